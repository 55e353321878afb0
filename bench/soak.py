"""Soak: N minutes at 200 concurrent streams; memory flat, no fd leak, no lost row.

Starts the emulator in its own process (TTFB 5 ms, TTFT 150 ms, ITL 10 ms, 50 tokens),
runs ``latlab run`` against it (closed loop, ``--concurrency`` streams, enough requests
for ``--minutes``), and samples the latlab process tree every ``--every`` seconds:
resident memory (``VmRSS``) and open file descriptors (``/proc/PID/fd``), summed over the
parent and its worker processes, while the emulator has streams in flight (the end-of-run
grade table, read with DuckDB, is not part of the soak). Checks at the end:

- resident memory after warm-up (the first ``--warmup-share`` of the run) grows < 10%;
- open fds at the end are no more than at the end of warm-up (+ a small slack);
- rows written == requests planned == requests the emulator received.

    python bench/soak.py --minutes 10 [--concurrency 200] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import STREAM_S, emulator  # noqa: E402

FD_SLACK = 8


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    fds: int
    processes: int


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux /proc)."""
    pids, i = [pid], 0
    while i < len(pids):
        path = Path(f"/proc/{pids[i]}/task/{pids[i]}/children")
        if path.exists():
            pids += [int(p) for p in path.read_text().split()]
        i += 1
    return pids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sample(pid: int, t0: float) -> Sample | None:
    """Memory and fds of the whole latlab process tree (None if it just ended)."""
    try:
        pids = tree(pid)
        return Sample(time.monotonic() - t0, sum(rss_mb(p) for p in pids),
                      sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids), len(pids))
    except (FileNotFoundError, ProcessLookupError):
        return None


def emulator_stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/_latlab/stats", timeout=10) as resp:  # noqa: S310
        stats = json.loads(resp.read())
    return {"requests": int(stats["requests"]), "active": int(stats["active"])}


def received(base: str) -> int:
    return emulator_stats(base)["requests"]


def soak_args(base: str, args: argparse.Namespace, results: Path) -> list[str]:
    iterations = round(args.concurrency * args.minutes * 60 / STREAM_S)
    return ["emulate=false", f"provider.base_url={base}", f"results_dir={results}",
            f"workload.warmup={args.concurrency}", f"workload.iterations={iterations}",
            f"workload.concurrency={args.concurrency}", f"workload.workers={args.workers}",
            "workload.max_tokens=128", "hydra/job_logging=none", "hydra/hydra_logging=none"]


def run_soak(base: str, args: argparse.Namespace, tmp: Path) -> tuple[list[Sample], int, int]:
    """Run latlab, sampling as it goes; returns samples, rows written, rows planned."""
    results = tmp / "results"
    cmd = [sys.executable, "-m", "latlab", "run", *soak_args(base, args, results)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "stderr.txt", "w"))  # noqa: SIM115
    samples: list[Sample] = []
    while proc.poll() is None:
        time.sleep(args.every)
        found = sample(proc.pid, t0)  # only while streams are in flight: not the end report
        if found is not None and proc.poll() is None and emulator_stats(base)["active"]:
            samples.append(found)
            print(f"{found.t_s:7.0f} s  rss {found.rss_mb:7.1f} MB  fds {found.fds:5d}  "  # noqa: T201
                  f"processes {found.processes}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError((tmp / "stderr.txt").read_text()[-3000:])
    files = [str(p) for p in results.glob("requests/*/*.parquet")]
    (rows,) = duckdb.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchone() or (0,)
    planned = int(soak_args(base, args, results)[4].split("=")[1]) + args.concurrency
    return samples, int(rows), planned


def verdict(samples: list[Sample], rows: int, planned: int, sent: int,
            warmup_share: float) -> list[str]:
    """Human-readable checks; a line starting with FAIL is a failure."""
    after = [s for s in samples if s.t_s >= samples[-1].t_s * warmup_share] or samples
    base, last = after[0], samples[-1]
    growth = (max(s.rss_mb for s in after) - base.rss_mb) / base.rss_mb * 100
    ok = {True: "ok  ", False: "FAIL"}
    return [
        f"{ok[growth < 10]} resident memory after warm-up: {base.rss_mb:.1f} MB -> peak "
        f"{max(s.rss_mb for s in after):.1f} MB, end {last.rss_mb:.1f} MB ({growth:+.1f}%)",
        f"{ok[last.fds <= base.fds + FD_SLACK]} open fds after warm-up {base.fds} -> end "
        f"{last.fds} (max {max(s.fds for s in after)})",
        f"{ok[rows == planned == sent]} rows {rows}, planned {planned}, emulator received {sent}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--every", type=float, default=5.0, help="sampling period, s")
    parser.add_argument("--warmup-share", type=float, default=0.2)
    args = parser.parse_args()
    with emulator() as base, tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        samples, rows, planned = run_soak(base, args, Path(tmp))
        lines = verdict(samples, rows, planned, received(base), args.warmup_share)
    print(f"soak: {args.minutes:g} min planned, {time.monotonic() - start:.0f} s run, "  # noqa: T201
          f"{args.concurrency} streams, workers={args.workers}\n" + "\n".join(lines))
    if any(line.startswith("FAIL") for line in lines):
        sys.exit(1)


if __name__ == "__main__":
    main()
