"""Load from several processes: ``workload.workers: N`` (N > 1) runs one asyncio event loop
per worker process, so a run is not bounded by one core or one GIL.

- Processes are started with the ``spawn`` context (never ``fork``: the embedded
  emulator runs in a thread of this process). Each builds its own providers (inside
  its own event loop) and writes its own Parquet files into the run's folder.
- The global schedule is kept (runner/engine/schedule.py ``split_group``): closed loop, the
  concurrency slots are dealt to the processes; open loop, request i goes to process
  i mod N at its global absolute due time. Due times travel as one wall-clock epoch
  (``time.time_ns``) that each process converts to its own ``perf_counter_ns``.
- Load groups run one after another for all processes (a barrier between groups).
- Every row is reported to the parent as a small ``RowNote`` on one ``mp.Queue``:
  the progress bar and the client verdict are the whole run's.
- ``workload.backend=ray``: the same ``WorkerProcess`` loop runs in Ray actors instead
  (runner/engine/ray_workers.py), its pipe and queue replaced by in-memory queues.
- Ctrl-C: worker processes ignore SIGINT; the parent tells them to stop, each cancels
  what is in flight, flushes its rows and reports; the run stays resumable. If the
  parent dies, the closed command pipe stops them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Protocol

from latlab.runner.core.errors import LatlabError
from latlab.runner.core.protocol import Endpoint
from latlab.runner.core.secrets import remember_endpoints
from latlab.runner.core.timing import new_event_loop, now_ns
from latlab.runner.engine.execute import (
    RequestTimer,
    RowNote,
    RunStats,
    build_runtimes,
    close_providers,
)
from latlab.runner.engine.heap import quiet_heap
from latlab.runner.engine.lag import ClientLoad, LagMonitor
from latlab.runner.engine.plan import Cell, PlannedRequest
from latlab.runner.engine.progress import live_progress
from latlab.runner.engine.schedule import Share, run_share, split_plan
from latlab.runner.results.write import RequestWriter, flush_bounds

START_MARGIN_NS = 50_000_000  # open loop: t0 this far ahead, so every process is ready
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
POLL_S = 0.01
NOTE_BATCH, NOTE_AGE_S = 64, 0.1  # rows per progress message, at most this old


class WorkerError(LatlabError):
    """A worker process failed; its traceback is in the message."""

    exit_code = 1


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs; pickled once, when it starts."""

    run_id: str
    results_dir: str
    cells: list[Cell]
    endpoints: dict[str, Endpoint]
    plan: list[PlannedRequest]
    workers: int


class CommandSource(Protocol):
    """Where a worker reads its commands: a pipe end here, a queue in a Ray actor."""

    def recv(self) -> Any: ...


@dataclass(frozen=True)
class GroupCommand:
    """Run your share of a load group; instants are wall-clock epochs (ns)."""

    group: int
    share: Share
    group_t0_wall_ns: int
    run_t0_wall_ns: int


def workers_for(cells: Sequence[Cell]) -> int:
    """``workload.workers`` of the run (the largest among its cells)."""
    return max((int(c.workload.get("workers", 1)) for c in cells), default=1)


def perf_ns_at(wall_ns: int) -> int:
    """This process's ``perf_counter_ns`` at the wall-clock instant ``wall_ns``."""
    return now_ns() + (wall_ns - time.time_ns())


# ---------------------------------------------------------------- worker process


class ForwardingStats(RunStats):
    """Counts locally and reports every row to the parent, in small batches (each queue
    put wakes the queue's feeder thread, which competes with the loop for the GIL)."""

    def __init__(self, index: int, events: Any) -> None:
        super().__init__(total=0)
        self.index, self.events = index, events
        self.pending: list[RowNote] = []
        self.sent_at = time.monotonic()

    def note(self, note: RowNote) -> None:
        super().note(note)
        self.pending.append(note)
        if len(self.pending) >= NOTE_BATCH or time.monotonic() - self.sent_at > NOTE_AGE_S:
            self.send()

    def send(self) -> None:
        if self.pending:
            self.events.put(("rows", self.index, self.pending))
            self.pending = []
        self.sent_at = time.monotonic()


@dataclass
class WorkerProcess:
    """The event loop side of one worker process."""

    index: int
    job: WorkerJob
    commands: CommandSource
    events: Any
    inbox: asyncio.Queue[GroupCommand | None] = field(default_factory=asyncio.Queue)
    current: asyncio.Task[None] | None = None

    def _read_commands(self, loop: asyncio.AbstractEventLoop) -> None:
        """Thread: forward commands to the loop; EOF (parent gone) means stop."""
        while True:
            try:
                command: GroupCommand | None = self.commands.recv()
            except (EOFError, OSError):
                command = None
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(self._command, command)
            if command is None:
                return

    def _command(self, command: GroupCommand | None) -> None:
        if command is None and self.current is not None:
            self.current.cancel()
        self.inbox.put_nowait(command)

    async def serve(self) -> None:
        runtimes = build_runtimes(self.job.cells, self.job.endpoints)
        remember_endpoints(self.job.endpoints.values())  # this process redacts them too
        writer = RequestWriter(Path(self.job.results_dir), self.job.run_id, background=True,
                               **flush_bounds(self.job.cells[0].workload))
        stats = ForwardingStats(self.index, self.events)
        timer = RequestTimer(self.job.run_id, runtimes, writer, stats)
        monitor = timer.monitor = LagMonitor()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read_commands, args=(loop,), daemon=True).start()
        self.events.put(("ready", self.index, None))
        try:
            with quiet_heap():
                async with monitor.running(), writer.flushing():
                    await self._run_groups(timer)
        finally:
            stats.send()
            writer.flush()
            await close_providers(runtimes)
            self.events.put(("final", self.index, (writer.rows_written, monitor.summary())))

    async def _run_groups(self, timer: RequestTimer) -> None:
        while (command := await self.inbox.get()) is not None:
            timer.t0_ns = perf_ns_at(command.run_t0_wall_ns)
            t0 = perf_ns_at(command.group_t0_wall_ns)
            self.current = asyncio.create_task(
                run_share(command.share, self.job.plan, t0, timer.send_one))
            await asyncio.wait([self.current])
            if self.current.cancelled():
                return
            self.current.result()
            assert isinstance(timer.stats, ForwardingStats)
            timer.stats.send()
            self.events.put(("done", self.index, command.group))


def worker_main(index: int, job: WorkerJob, commands: Connection, events: Any) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(WorkerProcess(index, job, commands, events).serve())
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
        events.put(("error", index, traceback.format_exc()))
        raise SystemExit(1) from None


# ---------------------------------------------------------------- parent


class WorkerPool:
    """The parent's view of the worker processes of one run."""

    def __init__(self, job: WorkerJob, stats: RunStats) -> None:
        self.job, self.stats = job, stats
        context = mp.get_context("spawn")
        self.events: Any = context.Queue()
        self.pipes: list[Connection] = []
        self.procs: list[SpawnProcess] = []
        for index in range(job.workers):
            receiver, sender = context.Pipe(duplex=False)
            self.pipes.append(sender)
            self.procs.append(context.Process(target=worker_main, daemon=True,
                                              args=(index, job, receiver, self.events),
                                              name=f"latlab-worker-{index}"))
        self.ready: set[int] = set()
        self.done: dict[int, set[int]] = {}
        self.finals: dict[int, tuple[int, ClientLoad]] = {}

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def pump(self) -> None:
        """Take every pending event off the queue."""
        while True:
            try:
                kind, index, payload = self.events.get_nowait()
            except queue.Empty:
                return
            self._event(kind, index, payload)

    def _event(self, kind: str, index: int, payload: Any) -> None:
        if kind == "rows":
            for note in payload:
                self.stats.note(note)
        elif kind == "ready":
            self.ready.add(index)
        elif kind == "done":
            self.done.setdefault(payload, set()).add(index)
        elif kind == "final":
            self.finals[index] = payload
        elif kind == "error":
            raise WorkerError(f"worker {index} failed:\n{payload}")

    def check_alive(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc.exitcode is not None and index not in self.finals:
                self.pump()
                raise WorkerError(f"worker {index} exited with status {proc.exitcode}")

    async def until(self, condition: Callable[[], bool], timeout_s: float | None = None) -> None:
        """Pump events until ``condition()`` holds."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not condition():
            self.pump()
            if condition():
                return
            self.check_alive()
            if deadline is not None and time.monotonic() > deadline:
                raise WorkerError(f"worker processes did not answer in {timeout_s:.0f} s")
            await asyncio.sleep(POLL_S)

    async def run_groups(self) -> None:
        await self.until(lambda: len(self.ready) == len(self.procs), READY_TIMEOUT_S)
        run_t0 = time.time_ns()
        for group, shares in enumerate(split_plan(self.job.plan, self.job.workers)):
            t0 = time.time_ns() + START_MARGIN_NS
            for share, pipe in zip(shares, self.pipes, strict=True):
                pipe.send(GroupCommand(group, share, t0, run_t0))
            await self.until(partial(self._group_done, group))

    def _group_done(self, group: int) -> bool:
        return len(self.done.get(group, ())) == len(self.procs)

    async def close(self) -> None:
        """Stop every worker (cancelling what is in flight), collect its report, join."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        with contextlib.suppress(WorkerError):
            await self.until(self._all_final, STOP_TIMEOUT_S)
        for proc in self.procs:
            proc.join(STOP_TIMEOUT_S if proc.exitcode is None else None)
            if proc.exitcode is None:
                proc.terminate()
                proc.join()
        for pipe in self.pipes:
            pipe.close()
        self.events.close()
        self.events.join_thread()

    def _all_final(self) -> bool:
        return all(i in self.finals or p.exitcode is not None for i, p in enumerate(self.procs))

    @property
    def rows_written(self) -> int:
        return sum(rows for rows, _ in self.finals.values())

    @property
    def load(self) -> ClientLoad:
        return ClientLoad.worst([load for _, load in self.finals.values()])


async def drive_workers(job: WorkerJob, stats: RunStats, writer: RequestWriter,
                        label: str) -> None:
    """Run the plan in ``job.workers`` processes; their rows count into ``writer``."""
    pool = WorkerPool(job, stats)
    pool.start()
    try:
        async with live_progress(stats, label):
            await pool.run_groups()
    finally:
        await pool.close()
        writer.rows_written += pool.rows_written
        stats.load = pool.load
