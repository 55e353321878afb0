"""The Linux timerfd behind the pacer: readable at the armed instant, never before."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator

import pytest

from latlab.runner.core.timerfd import TimerFd, open_timerfd, timerfd_available
from latlab.runner.core.timing import now_ns

MS = 1_000_000

needs_timerfd = pytest.mark.skipif(not timerfd_available(), reason="no timerfd (not Linux)")


@pytest.fixture()
def timer() -> Iterator[TimerFd]:
    opened = open_timerfd()
    assert opened is not None
    yield opened
    opened.close()


@needs_timerfd
def test_readable_at_the_armed_instant_and_not_before(timer: TimerFd) -> None:
    for delay_ms in (1, 3, 7):
        at = now_ns() + delay_ms * MS
        timer.arm(at)
        assert select.select([timer], [], [], 0)[0] == []  # not yet
        assert select.select([timer], [], [], 1.0)[0] == [timer]
        assert now_ns() >= at
        timer.drain()
        assert select.select([timer], [], [], 0)[0] == []  # drained


@needs_timerfd
def test_re_arming_moves_the_instant(timer: TimerFd) -> None:
    timer.arm(now_ns() + 5 * MS)
    later = now_ns() + 40 * MS
    timer.arm(later)
    assert select.select([timer], [], [], 1.0)[0] == [timer]
    assert now_ns() >= later


@needs_timerfd
def test_close_releases_the_descriptor() -> None:
    timer = open_timerfd()
    assert timer is not None
    fd = timer.fileno()
    timer.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_it_can_be_switched_off() -> None:
    code = "from latlab.runner.core.timerfd import open_timerfd as o; print(o())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "LATLAB_TIMERFD": "0"}).stdout
    assert out.strip() == "None"
