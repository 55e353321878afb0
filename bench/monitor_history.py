"""Is a monitor's history quick to read after a year? ``latlab alerts``, ``latlab report
--since 7d`` (with its HTML plots) and the monitor's per-round read-back.

A monitor writes one run per round and, once an hour, merges the rounds older than an hour
into their UTC day's compacted files (runner/results/compact.py). ``--days`` of
``--every``-minute rounds over ``--cells`` cells (one request per cell per round; a year of
5-minute rounds over 20 cells is ~2.1 M rows in ~105 k runs) are left as that leaves them:
every day before the last two hours as one compacted generation, written by the same
function the compaction uses (``write_generation``), the last two hours' rounds as their own
files (the most an hourly compaction leaves loose). Then, each in ``--repeat`` fresh
processes (pinned to ``--cpu`` with taskset), the median wall time of: ``latlab alerts``,
``latlab report --since 7d``, ``latlab report --since 7d --html FILE`` and ``read_round``
(the round's rows, grades, burn rates, headroom; what the monitor reads after each round)
and a monitor's restart (its last round and the 30-day SLO counts it keeps in memory),
and the CPU time (user + system) those processes used. ``--uncompacted`` leaves every round
as its own files instead (the layout before compaction), for comparison.

    python bench/monitor_history.py --days 365 --cells 20 --every 5 --cpu 1
    python bench/monitor_history.py --days 7 --cells 20 --every 5 --cpu 1 --uncompacted
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA
from latlab.runner.results.compact import write_generation
from latlab.runner.results.layout import REQUESTS, RUNS, SPANS, day_folder

LOOSE_S = 7200.0  # an hourly compaction of rounds over 1 h old leaves at most 2 h loose
READ_ROUND = """
import sys, time, yaml
from pathlib import Path
from latlab.analysis.probes import read_round
from latlab.analysis.query import latest_run_ids
results = Path(sys.argv[1])
with open(sys.argv[2]) as f:
    slo = yaml.safe_load(f)
(run_id,) = latest_run_ids(results, 1)  # the monitor knows its round's run id
t = time.perf_counter()
read_round(results, run_id, "bench", slo)
print(f"{time.perf_counter() - t:.2f}")
"""


Columns = dict[str, list[Any]]
RESTART = """
import sys, time, yaml
from pathlib import Path
from latlab.analysis.probes import AttainmentCache, last_round
results = Path(sys.argv[1])
with open(sys.argv[2]) as f:
    slo = yaml.safe_load(f)
last_round(results, "bench")
AttainmentCache().load(results, slo, "bench")
"""


def round_rows(started: datetime, cells: int, rng: random.Random) -> tuple[str, Columns]:
    """One round's run id and its request columns (the columns a probe fills)."""
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}"
    columns: dict[str, list[Any]] = {
        "run_id": [run_id] * cells, "cell": [f"p/m{c}/short/none/stream" for c in range(cells)],
        "provider": ["p"] * cells, "api": ["messages"] * cells,
        "model": [f"m{c}" for c in range(cells)], "model_id": [f"m{c}" for c in range(cells)],
        "prompt": ["short"] * cells, "guardrail": ["none"] * cells, "stream": [True] * cells,
        "concurrency": [1] * cells, "iteration": [0] * cells, "warmup": [False] * cells,
        "started_at": [started + timedelta(milliseconds=300 * c) for c in range(cells)],
        "ttft_ms": [rng.lognormvariate(5.5, 0.3) for _ in range(cells)],
        "total_ms": [900.0] * cells, "output_tps": [80.0] * cells,
        "error_type": ["overloaded" if rng.random() < 0.002 else None for _ in range(cells)],
        "client": ["httpx"] * cells, "transport": ["aiohttp"] * cells, "retries": [0] * cells,
        "itl_ms": [[] for _ in range(cells)]}
    return run_id, columns


def table(columns: Columns, schema: pa.Schema) -> pa.Table:
    """The columns given, every other column of ``schema`` null (as the writer leaves it)."""
    rows = len(next(iter(columns.values())))
    return pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) if f.name in columns
                                 else pa.nulls(rows, type=f.type) for f in schema],
                                schema=schema)


def record(run_id: str, started: datetime, number: int, cells: int) -> Columns:
    return {"run_id": [run_id], "started_at": [started], "status": ["finished"],
            "monitor_id": ["bench"], "monitor_round": [number], "cells": [cells],
            "requests": [cells], "overrides": [[]], "workers": [1], "resumes": [0],
            "errors": [0]}


def merged(parts: list[Columns]) -> Columns:
    return {k: [v for p in parts for v in p[k]] for k in parts[0]}


def write_history(results: Path, days: float, cells: int, every_min: float,
                  loose_s: float = LOOSE_S) -> int:
    """Every round of ``days``: compacted per day, the last ``loose_s`` as the runs' own
    files."""
    rng, now = random.Random(0), datetime.now(UTC)
    rounds = int(days * 1440 / every_min)
    day, requests, runs = "", list[Columns](), list[Columns]()  # a day's rounds, gathered
    for i in range(rounds):
        started = now - timedelta(minutes=every_min * (rounds - i))
        run_id, rows = round_rows(started, cells, rng)
        if f"{started:%Y-%m-%d}" != day or (now - started).total_seconds() < loose_s:
            write_day(results, day, requests, runs)
            day, requests, runs = f"{started:%Y-%m-%d}", [], []
        if (now - started).total_seconds() < loose_s:
            write_round(results, run_id, rows, record(run_id, started, i + 1, cells))
        else:
            requests.append(rows)
            runs.append(record(run_id, started, i + 1, cells))
    write_day(results, day, requests, runs)
    return rounds


def write_day(results: Path, day: str, requests: list[Columns], runs: list[Columns]) -> None:
    """A day's rounds as its compacted generation, by the compaction's own writer."""
    if runs:
        write_generation(day_folder(results, day), 1, {
            REQUESTS: [table(merged(requests), REQUESTS_SCHEMA)], SPANS: [],
            RUNS: [table(merged(runs), RUNS_SCHEMA)]})


def write_round(results: Path, run_id: str, rows: Columns, run: Columns) -> None:
    """One loose round, as `latlab run` leaves it: a requests part file and its record."""
    folder = results / "requests" / run_id
    folder.mkdir(parents=True)
    pq.write_table(table(rows, REQUESTS_SCHEMA), folder / "part-00000.parquet")
    (results / "runs").mkdir(exist_ok=True)
    pq.write_table(table(run, RUNS_SCHEMA), results / "runs" / f"{run_id}.parquet")


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process: the CPU time
    hardly depends on what else the machine runs, the wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--every", type=float, default=5.0, help="minutes between rounds")
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per command")
    parser.add_argument("--cpu", type=int, help="pin each timed process to this CPU")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/latlab-monitor-bench"))
    parser.add_argument("--uncompacted", action="store_true", help="every round as its own "
                        "files (the layout before compaction), for comparison")
    opts = parser.parse_args()
    results = opts.dir / "results"
    shutil.rmtree(results, ignore_errors=True)  # the history ends now: alerts see its end
    results.mkdir(parents=True)
    began = time.perf_counter()
    loose_s = opts.days * 86400 if opts.uncompacted else LOOSE_S
    rounds = write_history(results, opts.days, opts.cells, opts.every, loose_s)
    print(f"wrote {rounds} rounds, {rounds * opts.cells} rows "  # noqa: T201
          f"in {time.perf_counter() - began:.0f} s")
    pin = ["taskset", "-c", str(opts.cpu)] if opts.cpu is not None else []
    latlab = [*pin, sys.executable, "-m", "latlab"]
    slo = Path(__file__).resolve().parents[1] / "conf" / "slo" / "default.yaml"
    since = [*latlab, "report", "--since", "7d", "--results", str(results)]
    for name, args in (("alerts", [*latlab, "alerts", "--results", str(results)]),
                       ("report --since 7d", since),
                       ("report --since 7d --html", [*since, "--html", str(opts.dir / "h.html")]),
                       ("read_round (incl. start-up)", [*pin, sys.executable, "-c", READ_ROUND,
                                                        str(results), str(slo)]),
                       ("monitor restart (last_round + 30-day attainment)",
                        [*pin, sys.executable, "-c", RESTART, str(results), str(slo)])):
        runs = [timed(args) for _ in range(opts.repeat)]
        walls = [w for w, _ in runs]
        print(f"{name}: median {statistics.median(walls):.2f} s "  # noqa: T201
              f"({', '.join(f'{w:.2f}' for w in walls)}), CPU median "
              f"{statistics.median(c for _, c in runs):.2f} s")


if __name__ == "__main__":
    main()
