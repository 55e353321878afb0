"""Make the repo root importable when the package is not installed, and keep timing tests alone.

The suite runs on two pytest-xdist workers (``-n 2`` in pyproject.toml). A test marked
``timing`` asserts wall-clock figures (TTFT against a fixed profile, schedules, client-late
flags), which a busy neighbour would distort, so it runs while the other worker waits:

    other tests   take the machine shared     (many at once)
    timing tests  take the machine exclusively (alone)

A readers-writer lock over two files in the run's shared temp directory: a timing test holds
``gate`` while it waits for ``machine``, so no new test slips in ahead of it.
"""

import fcntl
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# xdist workers (and anything started in the background by a shell) ignore SIGINT, and a
# child inherits an ignored signal: the tests that press Ctrl-C on a run or a proxy would
# wait forever. With a handler installed here, every child starts with the default again.
signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def machine_turn(lock_dir: Path, alone: bool) -> Iterator[None]:
    """Hold the machine shared, or alone when ``alone``, for the duration of the block."""
    with open(lock_dir / "gate", "a") as gate, open(lock_dir / "machine", "a") as machine:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(machine, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _timing_tests_run_alone(request: pytest.FixtureRequest,
                            tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if not hasattr(request.config, "workerinput"):  # not under xdist: nothing runs beside us
        yield
        return
    lock_dir = tmp_path_factory.getbasetemp().parent  # shared by every worker of this run
    with machine_turn(lock_dir, request.node.get_closest_marker("timing") is not None):
        yield
