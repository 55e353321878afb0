"""Timing fidelity of the path users run: ``latlab run`` end to end against a known schedule.

    python bench/fidelity_run.py [--levels 1,16,64,200] [--waves 20] [--repeats 1]
        [--checkout LABEL=DIR ...] [--override KEY=VALUE ...] [--json FILE]

The emulator runs standalone (``python -m latlab.providers.emulator``, pinned to core 1) with
a fixed schedule: headers after 5 ms, the first content token 150 ms after it received the request,
then one token every 10 ms, 50 tokens (sigma 0). For each level C the real CLI runs as a
subprocess pinned to core 0::

    latlab run provider=openai_compat provider.base_url=EMULATOR workload.concurrency=C
        workload.iterations=WAVES*C workload.max_tokens=1000 results_dir=TMP

(through ``python -c 'from latlab.runner.app.cli import main; main()'`` with
``PYTHONPATH=DIR``, so a
``--checkout before=/tmp/base`` export of another commit runs side by side with this one,
order rotated per repeat). Its Parquet rows and run record are then read back:

- TTFT error = ``ttft_ms`` − (150 ms + the emulator's median send lag of the run); overall
  (every measured row) and steady (rows that did not open a connection);
- gap error = |gap − 10 ms| over every inter-token gap of the measured rows (p99);
- CPU µs/token = the client process's utime+stime (``/proc/PID/stat``, sampled every 20 ms,
  interpolated) from its first request's start to its last request's end, over the content
  tokens received in that span (warm-up rows included: they are in the span);
- loop lag p99/max: the run record (runner/engine/lag.py's ticker);
- streams held: mean requests in flight between the first and the last measured send.

The emulator's own send lag (p50/p99) and /proc/loadavg are reported with every figure.
``bench/fidelity.py`` is the provider-only lower bound (no CLI, writer or progress display).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from emulator_process import ROOT, cpu_seconds, emulator_process

TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 5.0, 150.0, 10.0, 50
PROFILE_ARGS = ["--ttfb-ms", f"{TTFB_MS:g}", "--ttft-ms", f"{TTFT_MS:g}",
                "--itl-ms", f"{ITL_MS:g}", "--output-tokens", str(TOKENS)]
CLIENT_CORE, EMULATOR_CORE = "0", "1"
SAMPLE_S = 0.02
RUN_TIMEOUT_S = 300.0
CLI = "import sys; from latlab.runner.app.cli import main; sys.argv[0] = 'latlab'; main()"


@dataclass
class CpuTrace:
    """(wall-clock s, CPU s) samples of one process, taken by a thread while it runs."""

    pid: int
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    def sample(self) -> bool:
        try:
            cpu = cpu_seconds(self.pid)
        except (OSError, IndexError, ValueError):
            return False
        self.walls.append(time.time())
        self.cpus.append(cpu)
        return True

    def at(self, wall: float) -> float:
        """CPU seconds at ``wall``, linearly interpolated between samples."""
        i = bisect.bisect_left(self.walls, wall)
        if i <= 0:
            return self.cpus[0]
        if i >= len(self.walls):
            return self.cpus[-1]
        w0, w1, c0, c1 = self.walls[i - 1], self.walls[i], self.cpus[i - 1], self.cpus[i]
        return c0 + (c1 - c0) * (wall - w0) / (w1 - w0) if w1 > w0 else c1


@dataclass
class RunResult:
    """One ``latlab run`` at one level (times in ms)."""

    checkout: str
    concurrency: int
    requests: int
    errors: int
    new_connections: int
    ttft_err_p50: float
    ttft_err_p99: float
    ttft_err_max: float
    steady_n: int
    steady_err_p50: float
    steady_err_p99: float
    steady_err_max: float
    gap_err_p99: float
    cpu_us_per_token: float
    loop_lag_p99: float
    loop_lag_max: float
    streams_held: float
    server_lag_p50: float
    server_lag_p99: float
    loadavg: str
    wall_s: float


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def http(base: str, path: str, post: bool = False) -> Any:
    req = urllib.request.Request(base + path, method="POST" if post else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def emulator(python: str) -> AbstractContextManager[str]:
    """The standalone emulator on its own core; yields its base URL."""
    return emulator_process(PROFILE_ARGS, python, prefix=("taskset", "-c", EMULATOR_CORE))


def cli_command(python: str, base: str, level: int, waves: int, results: Path,
                overrides: Sequence[str]) -> list[str]:
    return ["taskset", "-c", CLIENT_CORE, python, "-c", CLI, "run",
            "provider=openai_compat", f"provider.base_url={base}",
            f"workload.concurrency={level}", f"workload.iterations={waves * level}",
            "workload.max_tokens=1000", f"results_dir={results}", *overrides]


def run_cli(cmd: list[str], checkout: Path) -> CpuTrace:
    """Run the CLI to its end, sampling its CPU time; raises on a failed run."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "COLUMNS": "120"}
    proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    trace = CpuTrace(proc.pid)
    sampler = threading.Thread(target=_sample_until_exit, args=(trace, proc), daemon=True)
    sampler.start()
    out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"latlab run failed ({proc.returncode}):\n{out[-3000:]}")
    sys.stderr.write(out[-600:])
    return trace


def _sample_until_exit(trace: CpuTrace, proc: subprocess.Popen[str]) -> None:
    while proc.poll() is None and trace.sample():
        time.sleep(SAMPLE_S)


def read_rows(results: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run's request rows and its run record."""
    (run_file,) = (results / "runs").glob("*.parquet")
    run = pq.read_table(run_file).to_pylist()[0]
    rows = pq.read_table(results / "requests" / run["run_id"]).to_pylist()
    return rows, run


def streams_held(rows: list[dict[str, Any]]) -> float:
    """Mean requests in flight between the first and the last measured send."""
    spans = [(start_s(r), end_s(r)) for r in rows]
    measured = [start_s(r) for r in rows if not r["warmup"]]
    lo, hi = min(measured), max(measured)
    if hi <= lo:
        return float(len(measured))
    inside = sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in spans)
    return inside / (hi - lo)


def start_s(row: dict[str, Any]) -> float:
    return float(row["started_at"].timestamp())


def end_s(row: dict[str, Any]) -> float:
    return start_s(row) + (row["total_ms"] or 0.0) / 1000


def tokens(row: dict[str, Any]) -> int:
    return len(row["itl_ms"] or []) + 1 if row["ttft_ms"] is not None else 0


def cpu_per_token(rows: list[dict[str, Any]], trace: CpuTrace) -> float:
    """Client CPU µs per content token, over the span its requests were in flight."""
    lo, hi = min(map(start_s, rows)), max(map(end_s, rows))
    streamed = sum(tokens(r) for r in rows if r["error_type"] is None)
    return (trace.at(hi) - trace.at(lo)) * 1e6 / max(streamed, 1)


def summarize(checkout: str, level: int, rows: list[dict[str, Any]], run: dict[str, Any],
              trace: CpuTrace, server: dict[str, Any], wall_s: float) -> RunResult:
    measured = [r for r in rows if not r["warmup"]]
    ok = [r for r in measured if r["error_type"] is None and r["ttft_ms"] is not None]
    lag = server["lag_ms_by_event"].get("chunk", {})
    lag_p50 = float(lag.get("p50") or 0.0)
    errs = [r["ttft_ms"] - TTFT_MS - lag_p50 for r in ok]
    steady = [r["ttft_ms"] - TTFT_MS - lag_p50 for r in ok if not r["new_connection"]]
    gaps = [abs(g - ITL_MS) for r in ok for g in r["itl_ms"] or []]
    return RunResult(
        checkout=checkout, concurrency=level, requests=len(measured),
        errors=len(measured) - len(ok),
        new_connections=sum(bool(r["new_connection"]) for r in measured),
        ttft_err_p50=quantile(errs, 0.5), ttft_err_p99=quantile(errs, 0.99),
        ttft_err_max=max(errs, default=math.nan), steady_n=len(steady),
        steady_err_p50=quantile(steady, 0.5), steady_err_p99=quantile(steady, 0.99),
        steady_err_max=max(steady, default=math.nan), gap_err_p99=quantile(gaps, 0.99),
        cpu_us_per_token=cpu_per_token(rows, trace),
        loop_lag_p99=float(run.get("loop_lag_p99_ms") or math.nan),
        loop_lag_max=float(run.get("loop_lag_max_ms") or math.nan),
        streams_held=streams_held(rows), server_lag_p50=lag_p50,
        server_lag_p99=float(lag.get("p99") or 0.0), loadavg=loadavg(), wall_s=wall_s)


def measure(base: str, checkout: tuple[str, Path], level: int, waves: int,
            overrides: Sequence[str]) -> RunResult:
    """One ``latlab run`` at ``level`` streams, read back and scored."""
    label, folder = checkout
    with tempfile.TemporaryDirectory(prefix="fidelity-run-") as tmp:
        http(base, "/_latlab/stats/reset", post=True)
        cmd = cli_command(sys.executable, base, level, waves, Path(tmp), overrides)
        wall0 = time.perf_counter()
        trace = run_cli(cmd, folder)
        wall_s = time.perf_counter() - wall0
        server = http(base, "/_latlab/stats")
        rows, run = read_rows(Path(tmp))
    return summarize(label, level, rows, run, trace, server, wall_s)


COLUMNS = [("checkout", "{}"), ("concurrency", "{}"), ("requests", "{}"), ("errors", "{}"),
           ("new_connections", "{}"), ("ttft_err_p50", "{:+.2f}"), ("ttft_err_p99", "{:+.2f}"),
           ("ttft_err_max", "{:+.2f}"), ("steady_err_p50", "{:+.2f}"),
           ("steady_err_p99", "{:+.2f}"), ("steady_err_max", "{:+.2f}"),
           ("gap_err_p99", "{:.2f}"), ("cpu_us_per_token", "{:.1f}"),
           ("loop_lag_p99", "{:.1f}"), ("loop_lag_max", "{:.1f}"), ("streams_held", "{:.1f}"),
           ("server_lag_p50", "{:.2f}"), ("server_lag_p99", "{:.2f}"), ("loadavg", "{}")]


def table(results: Sequence[RunResult]) -> str:
    """A Markdown table, one line per run."""
    head = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    lines = ["| " + " | ".join(fmt.format(getattr(r, name)) for name, fmt in COLUMNS) + " |"
             for r in results]
    return "\n".join([head, rule, *lines])


def medians(results: Sequence[RunResult]) -> list[RunResult]:
    """Per (checkout, level): the median of each figure over the repeats."""
    keys = sorted({(r.checkout, r.concurrency) for r in results}, key=lambda k: (k[1], k[0]))
    out = []
    for checkout, level in keys:
        group = [r for r in results if (r.checkout, r.concurrency) == (checkout, level)]
        fields = {k: statistics.median(getattr(r, k) for r in group)
                  for k, v in asdict(group[0]).items() if isinstance(v, int | float)}
        out.append(RunResult(**{**asdict(group[0]), **fields, "loadavg": group[-1].loadavg}))
    return out


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_checkouts(specs: Sequence[str]) -> list[tuple[str, Path]]:
    if not specs:
        return [("this", ROOT)]
    return [(label, Path(folder).resolve())
            for label, _, folder in (s.partition("=") for s in specs)]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,16,64,200")
    parser.add_argument("--waves", type=int, default=20, help="requests per stream")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--checkout", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Hydra override for every latlab run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    checkouts = parse_checkouts(args.checkout)
    results: list[RunResult] = []
    with emulator(sys.executable) as base:
        for repeat in range(args.repeats):
            for level in (int(x) for x in args.levels.split(",")):
                turn = checkouts[repeat % len(checkouts):] + checkouts[:repeat % len(checkouts)]
                for checkout in turn:
                    results.append(measure(base, checkout, level, args.waves, args.override))
                    emit(table(results[-1:]).splitlines()[-1])
    emit("\nall runs:\n" + table(results))
    if args.repeats > 1:
        emit(f"\nmedians of {args.repeats} repeats:\n" + table(medians(results)))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
