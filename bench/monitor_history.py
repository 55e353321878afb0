"""Is ``latlab alerts`` (and a monitor round's read-back) quick on a long monitor history?

A monitor writes one run per round. ``--days`` of ``--every``-minute rounds over ``--cells``
cells (one request per cell per round; a year of 5-minute rounds over 20 cells is ~2 M rows
in ~105 k runs) are written as the monitor would: one requests part file and one run record
per round under ``--dir``. Then, each in a fresh process: ``latlab alerts`` (reads the runs of
the longest alert window), ``latlab report --since 7d`` and the monitor's per-round read-back
(``read_round``: the round's rows, grades, 30-day attainment, burn rates, headroom).

    python bench/monitor_history.py --days 30 --cells 20 --every 5
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA

READ_ROUND = """
import sys, time, yaml
from pathlib import Path
from latlab.analysis.probes import read_round
from latlab.analysis.query import known_run_ids
results = Path(sys.argv[1])
slo = yaml.safe_load(open(sys.argv[2]))
t = time.perf_counter()
read_round(results, known_run_ids(results)[-1], "bench", slo)
print(f"{time.perf_counter() - t:.2f}")
"""


def write_round(results: Path, started: datetime, cells: int, rng: random.Random) -> None:
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{rng.getrandbits(24):06x}"
    rows = [{"run_id": run_id, "cell": f"p/m{c}/short/none/stream", "provider": "p",
             "api": "messages", "model": f"m{c}", "model_id": f"m{c}", "prompt": "short",
             "guardrail": "none", "stream": True, "concurrency": 1, "iteration": 0,
             "warmup": False, "started_at": started + timedelta(milliseconds=300 * c),
             "ttft_ms": rng.lognormvariate(5.5, 0.3), "total_ms": 900.0, "output_tps": 80.0,
             "error_type": "overloaded" if rng.random() < 0.002 else None,
             "client": "httpx", "transport": "aiohttp", "retries": 0, "itl_ms": []}
            for c in range(cells)]
    folder = results / "requests" / run_id
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA), folder / "part-0.parquet")
    record = {"run_id": run_id, "started_at": started, "status": "finished",
              "monitor_id": "bench", "monitor_round": 0, "cells": cells, "requests": cells,
              "overrides": [], "workers": 1, "resumes": 0, "errors": 0}
    pq.write_table(pa.Table.from_pylist([record], schema=RUNS_SCHEMA),
                   results / "runs" / f"{run_id}.parquet")


def timed(args: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--cells", type=int, default=20)
    parser.add_argument("--every", type=float, default=5.0, help="minutes between rounds")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/latlab-monitor-bench"))
    opts = parser.parse_args()
    results = opts.dir / "results"
    if not results.is_dir():
        (results / "runs").mkdir(parents=True)
        rng, now = random.Random(0), datetime.now(UTC)
        rounds = int(opts.days * 1440 / opts.every)
        for i in range(rounds):
            write_round(results, now - timedelta(minutes=opts.every * (rounds - i)), opts.cells,
                        rng)
        print(f"wrote {rounds} rounds, {rounds * opts.cells} rows")  # noqa: T201
    slo = Path(__file__).resolve().parents[1] / "conf" / "slo" / "default.yaml"
    latlab = [sys.executable, "-m", "latlab"]
    for name, args in (("alerts", [*latlab, "alerts", "--results", str(results)]),
                       ("report --since 7d", [*latlab, "report", "--since", "7d",
                                              "--results", str(results)]),
                       ("read_round (incl. start-up)", [sys.executable, "-c", READ_ROUND,
                                                        str(results), str(slo)])):
        print(f"{name}: {timed(args):.2f} s")  # noqa: T201


if __name__ == "__main__":
    main()
