"""A latency measured through a real socket against the one the emulator planned.

The emulator sends at its deadline or just after (never before: runner/core/timing.py), and the
client can only add time — its own send, the server's wake-up, parsing the reply. So a
median may be a little early only by clock jitter, and late by the machine's overhead:
~2.5 ms on a busy shared 2-core VM, against a few tenths of a millisecond on a quiet one.
A symmetric ± 3 ms failed CI on that overhead alone (3.03 and 3.5 ms late), while a real
scheduling bug (accumulated sleeps, a missed deadline, an early send) is off by more.
"""

from __future__ import annotations

from collections.abc import Iterable
from statistics import median

EARLY_MS = 1.0  # a median this early means the emulator sent before its deadline
LATE_MS = 5.0  # the client and the loop's overhead on a busy machine, with room


def assert_on_time(measured: Iterable[float | None], planned_ms: float, what: str,
                   late_ms: float = LATE_MS) -> None:
    """The median of ``measured`` (ms) is within -EARLY_MS … +late_ms of ``planned_ms``."""
    value = median(m or 0.0 for m in measured)
    assert -EARLY_MS < value - planned_ms < late_ms, (
        f"{what}: median {value:.2f} ms, planned {planned_ms:.2f} ms")
