"""Does a run's first Parquet batch stall the timing loop? An event loop ticks every 1 ms
while a thread converts and encodes one batch of request rows, as RequestWriter's writer
thread does; each case in a fresh process, ``cold`` as the writer did before
runner/results/write.py warm_up_arrow, ``warm`` after it. Prints the loop's lag (ms late per tick).

    python bench/first_write.py --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def lag_during(work: threading.Thread, ticks: int = 600) -> list[float]:
    """The loop's lag (ms) per 1 ms sleep while ``work`` runs."""
    lags = []
    work.start()
    for _ in range(ticks):
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - start) * 1000 - 1)
    work.join()
    return sorted(lags)


def child(case: str) -> None:
    import pyarrow.parquet as pq

    from latlab.runner.core.records import PARQUET_COMPRESSION, REQUESTS_SCHEMA
    from latlab.runner.results.write import warm_up_arrow
    from tests.test_write import row

    if case == "warm":
        warm_up_arrow()
    rows = [{n: getattr(r, n) for n in REQUESTS_SCHEMA.names} for r in map(row, range(64))]

    def write() -> None:
        import pyarrow as pa

        pq.write_table(pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA),
                       pa.BufferOutputStream(), compression=PARQUET_COMPRESSION)

    lags = asyncio.run(lag_during(threading.Thread(target=write)))
    print(json.dumps({"p99": lags[int(len(lags) * 0.99)], "max": lags[-1]}))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=["cold", "warm"])
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(args.repeat):  # interleaved
        for case in results:
            done = subprocess.run([sys.executable, __file__, "--child", case], cwd=ROOT,
                                  capture_output=True, text=True, check=True)
            results[case].append(json.loads(done.stdout))
    print("| first batch | loop lag p99 (ms, median) | loop lag max (ms, median) |")  # noqa: T201
    print("|---|---:|---:|")  # noqa: T201
    for case, runs in results.items():
        p99 = statistics.median(r["p99"] for r in runs)
        worst = statistics.median(r["max"] for r in runs)
        print(f"| {case} | {p99:.2f} | {worst:.2f} |")  # noqa: T201


if __name__ == "__main__":
    main()
