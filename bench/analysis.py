"""Is the analysis interactive at scale? ``latlab grade``, ``budget`` and ``compare`` over
10 million synthetic request rows, against an equivalent pandas implementation, in the
same invocation (medians of ``--repeat`` runs; each measurement in a fresh process, whose
peak RSS is its memory figure).

    pip install -e '.[bench]'        # pandas + numpy: the baseline only, not a dependency
    python bench/analysis.py --rows 10000000 --runs 5 --repeat 3

Data: ``--runs`` runs × 40 cells (anthropic/bedrock × 5 models × 4 prompts), rows dealt
round-robin, every column of the requests schema filled (ttft lognormal per model, four
inter-token gaps per row, 0.5 % timeouts, 5 warm-up rows per cell, a server latency on
Bedrock rows), written by DuckDB as one Parquet file per run under ``--dir``.

``compare`` is timed as after ``latlab run`` (each run's metric summary kept under
``--dir``/summaries), ``compare-first`` with none kept (the first compare of results nobody
summarized: it reads every row and keeps the summaries).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ["haiku-4-5", "sonnet-4-5", "opus-4-6", "opus-4-1", "sonnet-4"]
PROMPTS = ["short", "medium", "long", "count20"]
CELLS = 40
COMMANDS = ["grade", "budget", "compare", "compare-first"]

# column -> SQL, in dependency order (each may use the ones above it); the rest are NULL
EXPRESSIONS = {
    "run_id": "$run",
    "provider": "CASE c % 2 WHEN 0 THEN 'anthropic' ELSE 'bedrock' END",
    "model": f"{MODELS}[1 + (c // 2) % 5]",
    "prompt": f"{PROMPTS}[1 + (c // 10) % 4]",
    "cell": "provider || '/' || model || '/' || prompt || '/none/stream'",
    "api": "'messages'",
    "model_id": "'id-' || model",
    "guardrail": "'none'", "stream": "true", "concurrency": "8",
    "iteration": "i // 40", "warmup": "i // 40 < 5",
    "started_at": "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_milliseconds(i)",
    "emulated": "true",
    "connect_ms": "CASE WHEN i % 997 = 0 THEN 20 + 5 * u1 END",
    "new_connection": "i % 997 = 0",
    "output_tokens": "50 + i % 100", "input_tokens": "500",
    "ttfb_ms": "40 + 20 * u2",
    "ttft_ms": "ttfb_ms + exp(ln(150 * (1 + (c // 2) % 5)) + 0.3 * z)",
    "generation_ms": "output_tokens * 10 * (0.8 + 0.4 * u3)",
    "total_ms": "ttft_ms + generation_ms + u4",
    "itl_ms": "[8 + 4 * u5, 8 + 4 * u6, 8 + 4 * u7, 8 + 4 * u8]",
    "output_tps": "(output_tokens - 1) / (generation_ms / 1000)",
    "server_latency_ms": "CASE WHEN provider = 'bedrock' THEN total_ms - 15 END",
    "error_type": "CASE WHEN err THEN 'timeout' END",
    "status": "CASE WHEN err THEN NULL ELSE 200 END",
    "retries": "0", "prompt_index": "0", "schema_version": "1", "client_late": "false",
}


def generate(folder: Path, rows: int, runs: int) -> list[str]:
    """Write the synthetic results set once (kept between invocations of the same size)."""
    import duckdb

    from latlab.runner.core.records import RUNS_SCHEMA

    ids = [f"20260101T00000{r}Z-bench{r}" for r in range(runs)]
    stamp = folder / f".rows-{rows}-runs-{runs}"
    if stamp.is_file():
        return ids
    con = duckdb.connect()
    per_run = rows // runs
    for r, run in enumerate(ids):
        (folder / "requests" / run).mkdir(parents=True, exist_ok=True)
        con.execute(f"SELECT setseed({0.1 + r / 100})")
        con.execute(f"COPY ({_select(run, per_run)}) TO "
                    f"'{folder / 'requests' / run / 'part-00000.parquet'}' (FORMAT parquet)")
        _write_run(folder, run, r, RUNS_SCHEMA)
    stamp.write_text("ok")
    return ids


def _select(run: str, n: int) -> str:
    from latlab.runner.core.records import REQUESTS_SCHEMA

    derived = ", ".join(f"{expr.replace('$run', repr(run))} AS {name}"
                        for name, expr in EXPRESSIONS.items())
    typed = ", ".join(
        f"CAST({field.name if field.name in EXPRESSIONS else 'NULL'} "
        f"AS {_sql_type(str(field.type))}) AS {field.name}" for field in REQUESTS_SCHEMA)
    uniforms = ", ".join(f"random() AS u{k}" for k in range(1, 9))
    base = (f"SELECT i, i % {CELLS} AS c, random() < 0.005 AS err, {uniforms}, "
            f"sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z FROM range({n}) t(i)")
    return f"SELECT {typed} FROM (SELECT *, {derived} FROM ({base}))"


def _sql_type(arrow: str) -> str:
    return {"string": "VARCHAR", "bool": "BOOLEAN", "int64": "BIGINT", "double": "DOUBLE",
            "list<item: double>": "DOUBLE[]", "timestamp[us, tz=UTC]": "TIMESTAMPTZ"}[arrow]


def _write_run(folder: Path, run: str, r: int, schema: object) -> None:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    row = dict(run_id=run, started_at=dt.datetime(2026, 1, 1, 0, 0, r, tzinfo=dt.UTC),
               status="finished", cells=CELLS, requests=0, errors=0)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([row], schema=schema), folder / "runs" / f"{run}.parquet")


# ---------------------------------------------------------------- the measured jobs


def job_duckdb(command: str, folder: Path, runs: list[str]) -> None:
    from latlab.analysis.budget import budget_command
    from latlab.analysis.commands import grade_command
    from latlab.analysis.compare import compare_command

    if command == "grade":
        grade_command(folder, runs, "csv")
    elif command == "budget":
        budget_command(folder, runs, "csv")
    else:  # compare, compare-first
        compare_command(folder, runs, "csv")


def job_pandas(command: str, folder: Path, runs: list[str]) -> None:
    from bench import analysis_pandas

    getattr(analysis_pandas, command)(folder, runs)


def child(engine: str, command: str, folder: Path, runs: list[str]) -> None:
    """One timed job in this (fresh) process; prints seconds and peak RSS as JSON."""
    import resource

    start = time.perf_counter()
    (job_duckdb if engine == "duckdb" else job_pandas)(command, folder, runs)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))  # noqa: T201


def measure(engine: str, command: str, folder: Path, runs: list[str], repeat: int
            ) -> tuple[float, float]:
    """Median seconds and largest peak MB of ``repeat`` fresh processes. ``compare`` finds
    each run's metric summary kept (as `latlab run` leaves runs of >= 10,000 requests: an
    untimed compare keeps them first); ``compare-first`` finds none (removed before each)."""
    times, peaks = [], []
    if engine == "duckdb" and command == "compare":
        _child(engine, "compare-first", folder, runs)
    for _ in range(repeat):
        if command == "compare-first":
            shutil.rmtree(folder / "summaries", ignore_errors=True)
        result = _child(engine, command, folder, runs)
        times.append(result["seconds"])
        peaks.append(result["peak_mb"])
    return statistics.median(times), max(peaks)


def _child(engine: str, command: str, folder: Path, runs: list[str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", engine, command,
                           "--dir", str(folder), *runs],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/latlab-bench-analysis"))
    parser.add_argument("--commands", nargs="+", choices=COMMANDS,
                        default=["grade", "budget", "compare", "compare-first"])
    parser.add_argument("--engines", nargs="+", default=["duckdb", "pandas"],
                        choices=["duckdb", "pandas"], help="pandas alone is slow: duckdb "
                        "alone for a quick look (no ratio then)")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "COMMAND"))
    parser.add_argument("run_ids", nargs="*")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.dir, args.run_ids)
        return
    t0 = time.perf_counter()
    runs = generate(args.dir, args.rows, args.runs)
    print(f"data: {args.rows:,} rows, {args.runs} runs x {CELLS} cells under {args.dir} "  # noqa: T201
          f"({time.perf_counter() - t0:.1f} s)")
    print("| command | DuckDB (s) | pandas (s) | pandas / DuckDB | DuckDB peak MB "  # noqa: T201
          "| pandas peak MB |\n|---|---:|---:|---:|---:|---:|")
    pandas: dict[str, tuple[float, float]] = {}  # compare-first: the same pandas job
    for command in args.commands:
        d_s, d_mb = measure("duckdb", command, args.dir, runs, args.repeat)
        if "pandas" not in args.engines:
            print(f"| {command} | {d_s:.2f} | - | - | {d_mb:.0f} | - |", flush=True)  # noqa: T201
            continue
        job = command.removesuffix("-first")
        if job not in pandas:
            pandas[job] = measure("pandas", job, args.dir, runs, args.repeat)
        p_s, p_mb = pandas[job]
        print(f"| {command} | {d_s:.2f} | {p_s:.2f} | {p_s / d_s:.1f}x | {d_mb:.0f} "  # noqa: T201
              f"| {p_mb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
