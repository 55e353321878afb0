"""The suite's own harness (tests/conftest.py): timing tests alone, Ctrl-C reaches children."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import machine_turn


def test_children_start_with_sigint_not_ignored() -> None:
    """Tests press Ctrl-C on runs and proxies: it must not be inherited as ignored."""
    status = subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True,
                            text=True, check=True).stdout
    assert not int(status.split()[1], 16) & (1 << 1), status  # SIGINT is bit 1


def test_a_timing_turn_waits_for_shared_turns_and_blocks_new_ones(tmp_path: Path) -> None:
    events: list[str] = []

    def hold(name: str, alone: bool, seconds: float) -> None:
        with machine_turn(tmp_path, alone):
            events.append(f"{name}+")
            time.sleep(seconds)
            events.append(f"{name}-")

    shared = threading.Thread(target=hold, args=("shared", False, 0.3))
    shared.start()
    time.sleep(0.05)
    alone = threading.Thread(target=hold, args=("alone", True, 0.3))
    alone.start()
    time.sleep(0.05)
    late = threading.Thread(target=hold, args=("late", False, 0.0))
    late.start()
    for thread in (shared, alone, late):
        thread.join(timeout=5)
    assert events == ["shared+", "shared-", "alone+", "alone-", "late+", "late-"]


@pytest.mark.xdist_group("harness")
def test_a_grouped_test_carries_its_group_to_the_scheduler(request: pytest.FixtureRequest) -> None:
    """``--dist loadgroup`` keeps a group on one worker only if its name is in the node id
    (conftest.py writes it there: xdist 3.8 on pytest 9.2 no longer does)."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not on an xdist worker with --dist loadgroup (-p no:xdist, -n 0)")
    assert request.node.nodeid.endswith("@harness"), request.node.nodeid


def test_the_timing_group_comes_first_with_its_timing_tests_in_one_stretch(
        request: pytest.FixtureRequest) -> None:
    """conftest.py orders the work units: the timing group first (xdist's loadgroup hands them
    out in that order), its timing tests together, so the other worker waits only once."""
    items = request.session.items
    grouped = [any(m.args[:1] == ("timing",) for m in i.iter_markers("xdist_group"))
               for i in items]
    if not any(grouped):
        pytest.skip("no test of the timing group was collected")
    assert grouped == sorted(grouped, reverse=True)  # the whole group before any other test
    timing = [i.get_closest_marker("timing") is not None
              for i, in_group in zip(items, grouped, strict=True) if in_group]
    assert timing == sorted(timing, reverse=True)  # then the rest of the group
