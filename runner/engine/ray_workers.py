"""Load from a Ray cluster: ``workload.workers=N workload.backend=ray``.

The worker loop of runner/engine/workers.py (``WorkerProcess``: one event loop, its own
providers, its own Parquet writer) runs unchanged in N Ray actors instead of N local processes.

- One global schedule: this process (the driver) deals every load group with ``split_plan``,
  exactly as for processes (closed loop: the concurrency slots; open loop: request i to actor
  i mod N at its global due offset), and sends each actor a ``GroupCommand`` whose instants
  are wall-clock epochs.
- Clocks: each actor converts those epochs to its own monotonic clock once per group
  (``perf_ns_at``) and paces and times its requests with ``perf_counter_ns``; a row's
  ``started_at`` is its host's wall clock. Rows from different hosts line up to within the
  hosts' wall-clock offset (NTP/chrony keeps it near 1 ms in one data centre, tens of ms
  elsewhere). Before the first request the driver measures each actor's offset (best of
  ``CLOCK_PROBES`` round trips; uncertainty ± half that round trip) into ``runs.actors_json``.
- One dataset: every actor writes its own part files (pid and a random suffix in the name)
  straight into the run's folder under ``results_dir``, which every node must reach:
  ``s3://…`` (the ``AWS_*`` variables are forwarded to the actors) or a shared file system.
- Events: an actor keeps its progress notes in memory and the driver drains them every
  ``DRAIN_S``: the timed event loop never waits on a remote call.
- A lost actor (its process or node died) ends the run: the others stop and flush, the run
  record names it and counts its requests that have no row; ``resume=RUN_ID`` sends them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import queue
import socket
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.records import RunRecord
from latlab.runner.core.timing import new_event_loop
from latlab.runner.engine.execute import RowNote, RunStats
from latlab.runner.engine.lag import ClientLoad, client_bound
from latlab.runner.engine.plan import Cell
from latlab.runner.engine.progress import console, live_progress
from latlab.runner.engine.schedule import split_plan
from latlab.runner.engine.workers import (
    READY_TIMEOUT_S,
    STOP_TIMEOUT_S,
    GroupCommand,
    WorkerError,
    WorkerJob,
    WorkerPool,
    WorkerProcess,
)
from latlab.runner.results.resume import finished_requests
from latlab.runner.results.write import RequestWriter

RAY_HINT = "pip install 'latlab[ray]', or workload.backend=process"
DRAIN_S = 0.05  # how often the driver collects the actors' progress notes
CLOCK_PROBES = 5
CALL_TIMEOUT_S = 10.0
START_MARGIN_NS = 200_000_000  # t0 this far ahead: commands cross the network
ACTOR_THREADS = 4  # serve (the worker loop), command, drain, place
FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
Event = tuple[str, int, Any]


class ActorLost(WorkerError):
    """An actor died mid-run; the message names it and says how to resume."""


@dataclass(frozen=True)
class RayOptions:
    """``workload.ray``: where the actors run and what each reserves."""

    address: str | None = None
    num_cpus: float = 1.0
    resources: dict[str, float] = field(default_factory=dict)
    strategy: str = "SPREAD"

    @classmethod
    def of(cls, workload: Mapping[str, Any]) -> RayOptions:
        ray = workload.get("ray") or {}
        return cls(ray.get("address"), float(ray.get("num_cpus", 1)),
                   {str(k): float(v) for k, v in (ray.get("resources") or {}).items()},
                   str(ray.get("strategy", "SPREAD")))


def backend_for(cells: Sequence[Cell]) -> str:
    """``workload.backend`` of the run: ``process`` or ``ray`` (one for all its cells)."""
    backends = {str(c.workload.get("backend", "process")) for c in cells}
    if len(backends) > 1:
        raise ConfigError("workload.backend: the cells differ; one run uses one backend")
    return backends.pop() if backends else "process"


# ---------------------------------------------------------------- connecting (preflight)


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"workload.backend: ray is not installed ({exc}); {RAY_HINT}") from exc
    module: ModuleType = ray
    return module


def check_address(address: str | None) -> None:
    """Something must answer at a ``host:port`` address: fail in seconds, before any write."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"workload.ray.address: {address!r} is not host:port, ray://host:port "
                          "or auto; leave it null for a local Ray instance")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
    except OSError as exc:
        raise ConfigError(f"workload.ray.address: nothing answers at {address} "
                          f"({exc.strerror or exc}); start a cluster there (ray start --head) "
                          "or leave it null for a local Ray instance") from exc


def connect(options: RayOptions) -> None:
    """Join the cluster at ``options.address``, or start a local Ray instance."""
    ray = import_ray()
    check_address(options.address)
    if ray.is_initialized():
        return
    env = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    local: dict[str, Any] = {"object_store_memory": 128 * 2**20} if options.address is None else {}
    try:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, namespace="latlab",
                 runtime_env={"env_vars": env} if env else None, **local)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = options.address or "a new local instance"
        raise ConfigError(f"workload.ray.address: cannot join Ray at {where}: "
                          f"{str(exc).splitlines()[0]}; check the address (ray status)") from exc


def disconnect() -> None:
    """Leave the cluster (a local instance started by ``connect`` stops)."""
    import ray

    ray.shutdown()


# ---------------------------------------------------------------- actor side


class Inbox:
    """The worker loop's command pipe, inside an actor."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[GroupCommand | None] = queue.SimpleQueue()

    def recv(self) -> GroupCommand | None:
        return self.queue.get()


class Outbox:
    """The worker loop's event queue, inside an actor: drained by the driver."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Event] = queue.SimpleQueue()

    def put(self, event: Event) -> None:
        self.queue.put(event)

    def take(self) -> list[Event]:
        events: list[Event] = []
        with contextlib.suppress(queue.Empty):
            while True:
                events.append(self.queue.get_nowait())
        return events


@dataclass(frozen=True)
class Place:
    """Where an actor runs, and its wall clock when asked."""

    host: str
    pid: int
    node_id: str
    wall_ns: int


class LoadActor:
    """One Ray actor (threaded): ``serve`` runs the worker loop; the driver calls the rest."""

    def __init__(self) -> None:
        self.inbox, self.outbox = Inbox(), Outbox()

    def place(self) -> Place:
        import ray

        return Place(socket.gethostname(), os.getpid(),
                     ray.get_runtime_context().get_node_id(), time.time_ns())

    def serve(self, index: int, job: WorkerJob) -> None:
        sys.setswitchinterval(0.001)  # as in a worker process: the writer thread yields sooner
        try:
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(WorkerProcess(index, job, self.inbox, self.outbox).serve())
        except BaseException:
            self.outbox.put(("error", index, traceback.format_exc()))
            raise

    def command(self, command: GroupCommand | None) -> None:
        self.inbox.queue.put(command)

    def drain(self) -> list[Event]:
        return self.outbox.take()


# ---------------------------------------------------------------- driver side


@dataclass
class Tally:
    """One actor's rows as the driver saw them (for its own client verdict)."""

    rows: int = 0
    late_sends: int = 0
    send_delay_max_ms: float = 0.0

    def add(self, notes: list[RowNote], limit_ms: float) -> None:
        for note in notes:
            delay = note.send_delay_ms or 0.0
            self.rows += 1
            self.late_sends += delay > limit_ms
            self.send_delay_max_ms = max(self.send_delay_max_ms, delay)


@dataclass
class ActorReport:
    """One actor in the run record (``runs.actors_json``)."""

    index: int
    host: str = "?"
    pid: int | None = None
    node_id: str | None = None
    clock_offset_ms: float | None = None
    clock_uncertainty_ms: float | None = None
    rows: int = 0
    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None
    cpu_pct: float | None = None
    send_delay_max_ms: float = 0.0
    late_sends: int = 0
    bottleneck: bool = False
    lost: bool = False

    @property
    def label(self) -> str:
        return f"{self.index}@{self.host}"


@dataclass
class ClusterReport:
    """What a Ray run adds to its run record."""

    actors: list[ActorReport] = field(default_factory=list)
    requests_lost: int = 0
    lost_reason: str = ""

    def apply(self, record: RunRecord) -> None:
        record.hosts = sorted({a.host for a in self.actors})
        record.actors_json = json.dumps([dataclasses.asdict(a) for a in self.actors])
        record.bottleneck_actors = [a.label for a in self.actors if a.bottleneck]
        record.actors_lost = [a.label for a in self.actors if a.lost]
        record.requests_lost = self.requests_lost


def probe_clock(actor: Any) -> tuple[Place, float, float]:
    """The actor's place, its clock offset to this host and the uncertainty (ms), best of
    ``CLOCK_PROBES`` round trips (the offset assumes the answer was stamped mid-way)."""
    import ray

    best: tuple[Place, float, float] | None = None
    for _ in range(CLOCK_PROBES):
        sent = time.time_ns()
        place: Place = ray.get(actor.place.remote(), timeout=CALL_TIMEOUT_S)
        back = time.time_ns()
        offset, half = (place.wall_ns - (sent + back) / 2) / 1e6, (back - sent) / 2e6
        if best is None or half < best[2]:
            best = (place, offset, half)
    assert best is not None
    return best


class RayPool(WorkerPool):
    """The driver's view of the actors of one run: ``WorkerPool``'s event handling and
    waiting, with actors for processes and drained in-memory queues for the pipes."""

    def __init__(self, job: WorkerJob, stats: RunStats, options: RayOptions) -> None:
        import ray

        self.job, self.stats, self.options = job, stats, options
        remote = ray.remote(LoadActor).options(
            num_cpus=options.num_cpus, resources=options.resources or None,
            scheduling_strategy=options.strategy, max_concurrency=ACTOR_THREADS, max_restarts=0)
        self.actors: list[Any] = [remote.remote() for _ in range(job.workers)]
        self.given: list[list[int]] = [[] for _ in self.actors]
        self.tallies = [Tally() for _ in self.actors]
        self.reports = [ActorReport(i) for i in range(job.workers)]
        self.serving: dict[int, Any] = {}
        self.lost: dict[int, str] = {}
        self.ready, self.done, self.finals = set(), {}, {}
        self.drained_at, self.stopping = 0.0, False

    def start(self) -> None:
        import ray

        job = ray.put(self.job)
        self.serving = {i: a.serve.remote(i, job) for i, a in enumerate(self.actors)}

    def live(self) -> list[int]:
        return [i for i in range(len(self.actors)) if i not in self.lost]

    def pump(self) -> None:
        """Collect every live actor's pending events (at most every ``DRAIN_S``)."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError

        if time.monotonic() - self.drained_at < DRAIN_S:
            return
        self.drained_at = time.monotonic()
        calls = {i: self.actors[i].drain.remote() for i in self.live()}
        for index, call in calls.items():
            try:
                events: list[Event] = ray.get(call, timeout=CALL_TIMEOUT_S)
            except (RayActorError, GetTimeoutError) as exc:
                self.lost[index] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                continue
            for kind, i, payload in events:
                self._event(kind, i, payload)

    def _event(self, kind: str, index: int, payload: Any) -> None:
        if kind == "rows":
            self.tallies[index].add(payload, self.stats.limit_ms)
        super()._event(kind, index, payload)

    def check_alive(self) -> None:
        """A finished ``serve`` without a final report: the actor failed or died."""
        import ray

        refs = list(self.serving.values())
        ended, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for index, ref in self.serving.items():
            if ref in ended and index not in self.finals and index not in self.lost:
                self._ended(index, ref)
        if self.lost and not self.stopping:
            raise ActorLost(f"actor(s) {sorted(self.lost)} lost")

    def _ended(self, index: int, ref: Any) -> None:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        try:
            ray.get(ref)
        except RayTaskError as exc:
            raise WorkerError(f"actor {index} failed:\n{exc}") from None
        except RayActorError as exc:
            self.lost[index] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            return
        self.drained_at = 0.0  # it returned: its final report is waiting in its outbox
        self.pump()

    async def run_groups(self) -> None:
        try:
            await self.until(lambda: len(self.ready) == len(self.actors), READY_TIMEOUT_S)
        except ActorLost:
            raise
        except WorkerError as exc:
            raise WorkerError(f"{exc}: {len(self.ready)} of {len(self.actors)} actors started; "
                              f"the cluster may lack {self.options.num_cpus:g} CPU per actor "
                              "(lower workload.workers or workload.ray.num_cpus)") from None
        self.probe_places()
        run_t0 = time.time_ns()
        for group, shares in enumerate(split_plan(self.job.plan, self.job.workers)):
            t0 = time.time_ns() + START_MARGIN_NS
            for share in shares:
                self.given[share.worker].extend(share.requests)
                self.actors[share.worker].command.remote(GroupCommand(group, share, t0, run_t0))
            await self.until(partial(self._group_done, group))

    def probe_places(self) -> None:
        for index, actor in enumerate(self.actors):
            place, offset, half = probe_clock(actor)
            report = self.reports[index]
            report.host, report.pid, report.node_id = place.host, place.pid, place.node_id
            report.clock_offset_ms, report.clock_uncertainty_ms = offset, half

    def _group_done(self, group: int) -> bool:
        return len(self.done.get(group, ())) == len(self.actors)

    def _all_final(self) -> bool:
        return all(i in self.finals or i in self.lost for i in range(len(self.actors)))

    async def close(self) -> None:
        """Stop every live actor (in flight cancelled, rows flushed), collect reports, kill."""
        import ray

        self.stopping = True
        for index in self.live():
            self.actors[index].command.remote(None)
        with contextlib.suppress(WorkerError):
            await self.until(self._all_final, STOP_TIMEOUT_S)
        for actor in self.actors:
            ray.kill(actor)

    def finish(self, writer: RequestWriter, report: ClusterReport) -> None:
        """Count the rows (the lost actors' from disk) and fill ``report``."""
        silent = len(self.finals) < len(self.actors)  # lost, or no final report in time
        on_disk = finished_requests(writer.results_dir, self.job.run_id) if silent else set()
        for index, actor in enumerate(self.reports):
            self._fill(actor, index, on_disk)
            report.requests_lost += len(self.given[index]) - actor.rows if actor.lost else 0
        writer.rows_written += sum(a.rows for a in self.reports)
        report.actors = self.reports
        report.lost_reason = "; ".join(f"actor {i}: {why}" for i, why in sorted(self.lost.items()))

    def _fill(self, actor: ActorReport, index: int, on_disk: set[tuple[str, int, bool]]) -> None:
        tally, load = self.tallies[index], self.finals.get(index, (0, ClientLoad()))[1]
        actor.lost = index in self.lost
        plan = self.job.plan
        actor.rows = (self.finals[index][0] if index in self.finals else
                      sum((plan[i].cell.name, plan[i].iteration, plan[i].warmup) in on_disk
                          for i in self.given[index]))
        actor.loop_lag_p99_ms, actor.loop_lag_max_ms = load.loop_lag_p99_ms, load.loop_lag_max_ms
        actor.cpu_pct = load.cpu_pct
        actor.send_delay_max_ms, actor.late_sends = tally.send_delay_max_ms, tally.late_sends
        share = tally.late_sends / tally.rows if tally.rows else 0.0
        actor.bottleneck = not actor.lost and client_bound(load, share, self.stats.limit_ms)


def bottleneck_warning(report: ClusterReport, workers: int, limit_ms: float) -> str | None:
    """One line naming the actors that were the client bottleneck, and the fix."""
    named = [a for a in report.actors if a.bottleneck]
    if not named:
        return None
    figures = ", ".join(f"{a.label} (loop lag p99 {a.loop_lag_p99_ms or 0:.1f} ms, CPU "
                        f"{a.cpu_pct or 0:.0f}%, {a.late_sends} sends > {limit_ms:g} ms late)"
                        for a in named)
    return (f"latlab: WARNING: {len(named)} of {workers} actors were the client bottleneck: "
            f"{figures}; fix: more actors (workload.workers={workers + 1}), more CPU per actor "
            "(workload.ray.num_cpus) or a lower rate/concurrency")


def lost_message(report: ClusterReport, run_id: str, rows: int) -> str:
    lost = [a.label for a in report.actors if a.lost]
    return (f"Ray actor {', '.join(lost)} lost ({report.lost_reason}); {report.requests_lost} "
            f"of its requests have no row (in flight, unflushed or not yet sent); {rows} rows "
            f"are on disk; continue with the same overrides and resume={run_id}")


async def drive_ray(job: WorkerJob, stats: RunStats, writer: RequestWriter, label: str,
                    options: RayOptions, report: ClusterReport) -> None:
    """Run the plan in ``job.workers`` Ray actors; their rows count into ``writer``."""
    pool = RayPool(job, stats, options)
    try:
        pool.start()
        async with live_progress(stats, label):
            await pool.run_groups()
    except ActorLost:
        pass
    finally:
        await pool.close()
        pool.finish(writer, report)
        stats.load = pool.load
        disconnect()
    warning = bottleneck_warning(report, job.workers, stats.limit_ms)
    if warning is not None:
        console.print(warning, style="bold red", markup=False, highlight=False, soft_wrap=True)
    if pool.lost:
        raise ActorLost(lost_message(report, job.run_id, writer.rows_written))


def results_location(results_dir: Path) -> str:
    """The results location as every node must see it: absolute, or ``s3:/…`` unchanged."""
    text = str(results_dir)
    return text if text.startswith("s3:") else str(results_dir.resolve())
