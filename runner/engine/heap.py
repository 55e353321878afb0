"""Keep the garbage collector and the writer thread out of the timing loop's way.

Measured (bench/stall_probe.py, 64 streams): a full (generation 2) collection walks every
object the process holds, Hydra's, pyarrow's, rich's and the modules' included, and stalled
the event loop for 42-118 ms in the middle of a run, inflating every stream's next token by
as much. ``gc.freeze()`` after setup moves those objects into a permanent generation the
collector never walks again, so the collections left during the run see only what the run
allocates itself (responses, rows): well under a millisecond.

The collections left are young ones, and their number is what costs: at the default threshold
(one per 700 allocations) a run at 64 streams spent ~5% of its CPU starting collections;
one per 10,000 allocations walks at most that many young objects (well under a millisecond).

The Parquet writer thread holds the GIL while it turns rows into Arrow; a switch interval of
1 ms (Python's default is 5 ms) hands the GIL back to the loop thread sooner.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

SWITCH_INTERVAL_S = 0.001
YOUNG_THRESHOLD = 10_000  # allocations between young collections (Python's default: 700)


@contextlib.contextmanager
def quiet_heap() -> Iterator[None]:
    """Collect once, freeze what exists, collect the young less often, shorten the GIL
    switch interval; undo after."""
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(YOUNG_THRESHOLD, thresholds[0]), *thresholds[1:])
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        gc.unfreeze()
