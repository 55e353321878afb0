"""The round loop: one round at a time, on a jittered schedule, within a request-rate bound,
until a limit is reached or SIGINT/SIGTERM asks it to stop."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from latlab.runner.monitor.settings import MonitorSettings


class StopSignal:
    """The first SIGINT or SIGTERM asks to stop after the current round (waits end at once);
    a second one interrupts the round (KeyboardInterrupt: its rows so far are kept)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals = 0

    def is_set(self) -> bool:
        return self.event.is_set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.event.set()
        if self.signals > 1:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[StopSignal]:
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class Schedule:
    """Start-to-start spacing: ``every`` × (1 ± jitter), and never faster than max_rps allows
    for the round's request count (rounds never overlap: the wait starts when a round ends)."""

    every_s: float
    jitter: float
    max_rps: float
    rng: random.Random = field(default_factory=random.Random)

    def spacing(self, requests: int) -> float:
        drawn = self.every_s * (1 + self.rng.uniform(-self.jitter, self.jitter))
        return max(drawn, requests / self.max_rps)

    def wait_after(self, round_s: float, requests: int) -> float:
        """Seconds to wait after a round that took ``round_s`` and sent ``requests``."""
        return max(0.0, self.spacing(requests) - round_s)


RoundFn = Callable[[int], int]  # round number -> requests it sent


def run_rounds(settings: MonitorSettings, run_round: RoundFn, stop: StopSignal,
               first_round: int = 1, clock: Callable[[], float] = time.monotonic) -> int:
    """Run rounds until stopped, ``monitor.rounds`` or ``monitor.duration``; rounds run."""
    schedule = Schedule(settings.every_s, settings.jitter, settings.max_rps)
    deadline = None if settings.duration_s is None else clock() + settings.duration_s
    done = 0
    while not stop.is_set() and (settings.rounds is None or done < settings.rounds):
        began = clock()
        requests = run_round(first_round + done)
        done += 1
        wait = schedule.wait_after(clock() - began, requests)
        if deadline is not None and clock() + wait >= deadline:
            break
        if settings.rounds is not None and done >= settings.rounds:
            break
        stop.event.wait(wait)
    return done
