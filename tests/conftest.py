"""Make the repo root importable when the package is not installed, keep timing tests alone,
and the fixtures several modules share (emulators, one agent-session run).

The suite runs on two pytest-xdist workers (``-n 2 --dist loadgroup`` in pyproject.toml). A
test marked ``timing`` asserts wall-clock figures (TTFT against a fixed profile, schedules,
client-late flags), which a busy neighbour would distort, so it runs while the other worker
waits:

    other tests   take the machine shared     (many at once)
    timing tests  take the machine exclusively (alone)

A readers-writer lock over two files in the run's shared temp directory: a timing test holds
``gate`` while it waits for ``machine``, so no new test slips in ahead of it. Every timing
test is in one xdist group, so they run one after another on one worker, which keeps the
machine from one timing test to the next instead of waiting, for each of them, until the
other worker's current test ends. Mark a test ``timing`` only when it asserts a wall-clock
figure (tests/on_time.py holds the bounds); everything else runs beside other tests.

A timing test that fails is run again, up to twice (pytest-rerunfailures): a shared
machine's stray burst of load must not fail CI, while a real regression fails every attempt.
"""

import fcntl
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from slow_tests import QUICK_S, SECONDS

if TYPE_CHECKING:
    from latlab.providers.emulator import RunningEmulator

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


def is_timing(item: pytest.Item | None) -> bool:
    return item is not None and item.get_closest_marker("timing") is not None


class _Turn:
    """This worker's current hold on the machine (None between tests)."""

    held: ExitStack | None = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Setup, call and teardown (module and session fixtures too) inside a turn: shared, or
    alone for a timing test; alone is kept while the worker's next test is timing too."""
    if not hasattr(item.config, "workerinput"):  # not under xdist: nothing runs beside us
        return (yield)
    alone = is_timing(item)
    if _Turn.held is None:
        lock_dir = item.config._tmp_path_factory.getbasetemp().parent  # shared by all workers
        _Turn.held = ExitStack()
        _Turn.held.enter_context(machine_turn(lock_dir, alone))
    try:
        return (yield)
    finally:
        if not (alone and is_timing(nextitem)):
            _Turn.held.close()
            _Turn.held = None


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_timing(item):
            item.add_marker(pytest.mark.flaky(reruns=2, reruns_delay=1))
            item.add_marker(pytest.mark.xdist_group("timing"))


def pytest_configure(config: pytest.Config) -> None:
    """Keep the order ``pytest_collection_modifyitems_order`` gives the work units (xdist
    would sort them by size)."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def unit_of(item: pytest.Item) -> str:
    """The work unit ``--dist loadgroup`` sends to one worker: the group, or the test alone."""
    group = item.get_closest_marker("xdist_group")
    return str(group.args[0]) if group and group.args else item.nodeid


def seconds_of(items: list[pytest.Item]) -> float:
    """A unit's expected duration: its tests' known costs (slow_tests.py)."""
    return sum(SECONDS.get(getattr(item, "originalname", item.name), QUICK_S) for item in items)


def alone_stretch(group: list[pytest.Item]) -> list[pytest.Item]:
    """The timing group with its timing tests together: first the modules of timing tests
    only, then the others (the Ray module: its cluster must not start twice), each of them
    with its timing tests first. Stable: a module's tests stay together."""
    mixed = {item.nodeid.split("::")[0] for item in group if not is_timing(item)}
    return sorted(group, key=lambda item: (item.nodeid.split("::")[0] in mixed,
                                           not is_timing(item)))


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_order(items: list[pytest.Item]) -> None:
    """Work units in the order the workers take them (xdist's loadgroup keeps collection order):
    the timing group first (its alone stretch idles the other worker, whose first unit is
    the quickest one so that the stretch starts at once), then the slowest units first so that
    both workers end together. The sort is stable: quick tests keep their collection order."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(unit_of(item), []).append(item)
    ranked = sorted((u for u in units if u != "timing"), key=lambda u: -seconds_of(units[u]))
    order = ["timing", *ranked[-1:], *ranked[:-1]]
    rest = (item for unit in order[1:] for item in units[unit])
    items[:] = [*alone_stretch(units.get("timing", [])), *rest]


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")  # after xdist
def pytest_collection_modifyitems_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group names into the node ids, as ``--dist loadgroup`` reads them (``path::test@group``).
    xdist 3.8 writes them to ``item._nodeid``, which pytest 9.2 no longer reads (its node ids
    are structured, ``item._id``), so every group was silently spread over both workers
    (pytest-xdist issue 1386): this writes them where pytest reads them."""
    if not getattr(config.option, "loadgroup", False):  # set on xdist workers only
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        suffix = f"@{'_'.join(names)}"
        if names and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = type(item._id).parse(item.nodeid + suffix)


@pytest.fixture(scope="session")
def emulator() -> Iterator["RunningEmulator"]:
    """The providers' emulator (tests/emulators.py: fixed 15/40/4 ms, 12 tokens), one per
    worker, on a free port; for tests that need no profile of their own."""
    from emulators import provider_profile

    from latlab.providers.emulator import start_emulator

    with start_emulator(provider_profile()) as running:
        yield running


@pytest.fixture(scope="session")
def quick_emulator() -> Iterator["RunningEmulator"]:
    """The proxies' emulator (tests/emulators.py: fixed 5/20/2 ms, 10 tokens), one per worker."""
    from emulators import quick_profile

    from latlab.providers.emulator import start_emulator

    with start_emulator(quick_profile()) as running:
        yield running


@pytest.fixture(scope="session")
def one_session_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose results/ hold one built-in agent session run (``latlab run
    workload=session profile=fast workload.iterations=1``), made once per worker for the
    modules that read it (mark them ``xdist_group("session_run")`` to share one worker).
    Copy it before writing more into it."""
    import subprocess

    cwd = tmp_path_factory.mktemp("session-run")
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "workload=session",
                           "profile=fast", "workload.iterations=1"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return cwd
