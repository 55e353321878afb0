"""How long does ``latlab report --html`` take over a big run? The synthetic results of
bench/analysis.py (``--rows`` rows in one run of 40 cells, every column filled), then the
report in fresh processes: the median wall and CPU seconds of ``--repeat`` runs, and the
page's size.

    python bench/report.py --rows 4000000 --repeat 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed_report(folder: Path, page: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the children's) of one ``latlab report``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "latlab", "report", "--results", str(folder),
                    "--html", str(page)], check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    from bench.analysis import generate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/latlab-bench-report"))
    args = parser.parse_args()
    generate(args.dir, args.rows, 1)
    page = args.dir / "report.html"
    timed_report(args.dir, page)  # untimed: keeps the run's compare summary, as a run does
    runs = [timed_report(args.dir, page) for _ in range(args.repeat)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    print(f"{args.rows:,} rows: report --html median {statistics.median(walls):.2f} s wall "  # noqa: T201
          f"(min {min(walls):.2f}, max {max(walls):.2f}), {statistics.median(cpus):.2f} s CPU; "
          f"{page.stat().st_size / 1e6:.1f} MB page")


if __name__ == "__main__":
    main()
