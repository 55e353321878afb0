"""One run, start to end: validate → plan → start emulators → schedule/time → write → grade.

``run_experiment`` is what ``latlab run`` (the Hydra main) calls with the composed,
resolved config as a plain dict.
"""

from __future__ import annotations

import asyncio
import json
import platform
import secrets
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import latlab
from latlab.analysis.slo import validate_slo
from latlab.providers.local_server import local_servers_for
from latlab.providers.registry import guardrail_kinds, kind_for, model_id_keys
from latlab.runner.agents.sessions import SessionTimer, check_session_cells, has_sessions
from latlab.runner.config import validate as checks
from latlab.runner.config.prompts import load_prompts
from latlab.runner.config.rules import check_rules
from latlab.runner.core.errors import ConfigError, ResultsError
from latlab.runner.core.protocol import DUMMY_KEY, Endpoint, is_loopback
from latlab.runner.core.records import RunRecord
from latlab.runner.core.secrets import remember_endpoints
from latlab.runner.core.timing import new_event_loop
from latlab.runner.engine.batches import build_batch, check_extras
from latlab.runner.engine.execute import RequestTimer, RunStats, build_runtimes, close_providers
from latlab.runner.engine.heap import quiet_heap
from latlab.runner.engine.lag import LagMonitor
from latlab.runner.engine.plan import (
    Cell,
    PlannedRequest,
    expand_cells,
    flatten_matrix,
    plan_requests,
)
from latlab.runner.engine.progress import console, live_progress, warn_if_client_bound
from latlab.runner.engine.ray_workers import (
    ActorLost,
    ClusterReport,
    RayOptions,
    backend_for,
    connect,
    drive_ray,
    results_location,
)
from latlab.runner.engine.schedule import run_plan
from latlab.runner.engine.traffic import check_traffic
from latlab.runner.engine.workers import WorkerJob, drive_workers, workers_for
from latlab.runner.results.resume import Done, check_same_config, finished_requests, load_run_record
from latlab.runner.results.write import (
    RequestWriter,
    ensure_writable,
    flush_bounds,
    write_run_record,
)

Composer = Callable[[list[str]], dict[str, Any]]


@dataclass
class RunContext:
    """What Hydra knows about this job, and how to compose one matrix cell."""

    compose: Composer
    overrides: list[str] = field(default_factory=list)
    choices: dict[str, str] = field(default_factory=dict)
    sweep_job: int | None = None


@dataclass
class RunSummary:
    run_id: str
    results_dir: Path
    requests: int
    errors: int
    status: str
    sessions: bool = False  # agent sessions: `requests` counts sessions, rows are model calls


def new_run_id() -> str:
    """Sortable by start time and unique across processes started in the same second."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def validate(cfg: Mapping[str, Any]) -> None:
    """Every check that needs no network: secrets (first), schema, cross-field rules."""
    secret_paths = checks.find_secrets(cfg)
    if secret_paths:
        raise ConfigError(f"{secret_paths[0]}: looks like a credential; secrets come only "
                          "from the environment or credential files")
    checks.validate_schema({**cfg, "matrix": flatten_matrix(cfg.get("matrix") or {})})
    check_rules(cfg)
    validate_slo(cfg["slo"])
    kind_for(cfg["provider"]["kind"])
    checks.check_model_for_provider(cfg, model_id_keys())
    checks.check_guardrail(cfg, guardrail_kinds())
    load_prompts(cfg["prompt"])
    check_traffic(cfg)  # replay's trace, drawn lengths: runner/engine/traffic.py
    build_batch(cfg)


def is_emulated(cfg: Mapping[str, Any]) -> bool:
    forced = cfg.get("emulate")
    return bool(cfg["provider"]["emulate"]) if forced is None else bool(forced)


def endpoint_for(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Preflight: where a cell sends and with which key, before any request."""
    provider = cfg["provider"]
    if emulator_url is None and not provider.get("base_url"):
        raise ConfigError(f"provider.base_url: {provider['name']!r} has no endpoint; "
                          "set provider.base_url or run on the emulator (emulate=true)")
    try:
        return kind_for(provider["kind"]).resolve_endpoint(provider, emulator_url)
    except ConfigError:
        if emulator_url is None and is_loopback(str(provider["base_url"])):
            return Endpoint(str(provider["base_url"]), DUMMY_KEY, emulated=False)
        raise


@contextmanager
def emulators_for(cells: list[Cell]) -> Iterator[dict[str, str | None]]:
    """Start one emulator per distinct profile among emulated cells; cell name → URL."""
    from latlab.providers.emulator import start_emulator

    urls: dict[str, str | None] = {}
    by_profile: dict[str, str] = {}
    with ExitStack() as stack:
        for cell in cells:
            if not is_emulated(cell.config):
                urls[cell.name] = None
                continue
            key = json.dumps(cell.config["profile"], sort_keys=True)
            if key not in by_profile:
                running = stack.enter_context(start_emulator(emulator_profile(cell.config)))
                by_profile[key] = running.base_url
            urls[cell.name] = by_profile[key]
        yield urls


def emulator_profile(cfg: Mapping[str, Any]) -> Any:
    """The cell's emulator profile, parsed; ConfigError naming what is wrong."""
    from latlab.providers.emulator import EmulatorProfile

    try:
        return EmulatorProfile.from_mapping(cfg["profile"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"profile: {exc}") from exc


def check_job_config(cfg: dict[str, Any], context: RunContext) -> list[Cell]:
    """Every check of one job that needs no network: run before Hydra writes its folder
    (runner/app/guard.py) and again in the job. Returns the job's cells."""
    validate(cfg)
    checks.check_overrides_for_secrets(context.overrides)
    cells = plan_cells(cfg, context)
    for cell in cells:
        check_extras(cell.config)
        if is_emulated(cell.config):
            emulator_profile(cell.config)
    return cells


def plan_cells(cfg: dict[str, Any], context: RunContext) -> list[Cell]:
    cells = expand_cells(cfg, context.compose)
    for cell in cells:  # a bad axis value is named before it can look like a duplicate cell
        validate(cell.config)
    names = [c.name for c in cells]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"matrix: two cells are identical ({sorted(duplicates)[0]})")
    check_session_cells(cells)
    return cells


def run_record(cfg: Mapping[str, Any], run_id: str, context: RunContext) -> RunRecord:
    return RunRecord(
        run_id=run_id, started_at=datetime.now(UTC), run_name=cfg.get("run_name"),
        latlab_version=latlab.__version__, host=socket.gethostname(),
        python_version=platform.python_version(),
        config_yaml=yaml.safe_dump(dict(cfg), sort_keys=False), overrides=context.overrides,
        choices_json=json.dumps(context.choices), experiment=context.choices.get("experiment"),
        sweep_job=context.sweep_job, monitor_id=(cfg.get("monitor") or {}).get("id"),
        monitor_round=(cfg.get("monitor") or {}).get("round"))


async def _drive(cells: list[Cell], endpoints: dict[str, Endpoint], record: RunRecord,
                 writer: RequestWriter, plan: list[PlannedRequest], stats: RunStats,
                 cluster: ClusterReport) -> None:
    label = record.run_name or record.run_id
    if record.backend == "ray":  # the worker loop in Ray actors: runner/engine/ray_workers.py
        job = WorkerJob(record.run_id, results_location(writer.results_dir), cells, endpoints,
                        plan, record.workers)
        await drive_ray(job, stats, writer, label, RayOptions.of(cells[0].workload), cluster)
        return
    if record.workers > 1:  # one event loop per worker process: runner/engine/workers.py
        job = WorkerJob(record.run_id, str(writer.results_dir), cells, endpoints, plan,
                        record.workers)
        await drive_workers(job, stats, writer, label)
        return
    runtimes = build_runtimes(cells, endpoints)
    timer = RequestTimer(record.run_id, runtimes, writer, stats)
    monitor = timer.monitor = LagMonitor(cpu_clock=time.thread_time)  # not the emulator's
    sessions = SessionTimer(timer, endpoints) if has_sessions(cells) else None  # agents/session.py
    try:
        with quiet_heap():  # engine/heap.py: no full collection stalls the loop mid-run
            async with live_progress(stats, label), monitor.running(), writer.flushing():
                await run_plan(plan, sessions.send_one if sessions else timer.send_one)
    finally:
        stats.load = monitor.summary()
        await close_providers(runtimes)
        if sessions is not None:
            sessions.close()


def run_experiment(cfg: dict[str, Any], context: RunContext) -> RunSummary:
    """Validate, preflight, run every request, write rows and the run record."""
    cells = check_job_config(cfg, context)
    connect_backend(cells)
    results_dir = Path(cfg["results_dir"])
    ensure_writable(results_dir)
    record, done = start_record(cfg, context, results_dir)
    record.cells = len(cells)
    plan = [r for r in plan_requests(cells, str(cfg["workload"]["schedule"]))
            if (r.cell.name, r.iteration, r.warmup) not in done]
    with emulators_for(cells) as urls, local_servers_for(cells):  # provider.launch: a real model
        endpoints = {c.name: endpoint_for(c.config, urls[c.name]) for c in cells}
        remember_endpoints(endpoints.values())  # redacted wherever they show up
        record.emulator_json = emulator_profiles_json(cells)
        writer = RequestWriter(results_dir, record.run_id, background=True,
                               **flush_bounds(cells[0].workload))
        writer.rows_written = len(done)
        write_run_record(results_dir, record)
        stats = _execute(cells, endpoints, record, writer, plan)
    keep_summary(results_dir, record)
    return RunSummary(record.run_id, results_dir, stats.done, stats.errors, record.status,
                      has_sessions(cells))


def connect_backend(cells: list[Cell]) -> None:
    """backend=ray: join the cluster now, so that a bad address fails before any write."""
    if backend_for(cells) != "ray":
        return
    if has_sessions(cells):
        raise ConfigError("workload.backend: agent sessions run in this process; "
                          "use workload.backend=process")
    connect(RayOptions.of(cells[0].workload))


def keep_summary(results_dir: Path, record: RunRecord) -> None:
    """For a large finished run, the metric summary `latlab compare` reads
    (analysis/summaries.py), so that the first compare need not read every row; a failure
    only warns: compare computes it again."""
    import duckdb

    from latlab.analysis.summaries import PRECOMPUTE_ROWS, summarize_run
    from latlab.runner.results import storage

    if record.requests < PRECOMPUTE_ROWS or storage.is_remote(results_dir):
        return
    try:
        summarize_run(results_dir, record.run_id)
    except (ResultsError, duckdb.Error, OSError) as exc:
        console.print(f"note: no metric summary kept for compare ({exc})", markup=False,
                      highlight=False, soft_wrap=True)


def start_record(cfg: dict[str, Any], context: RunContext,
                 results_dir: Path) -> tuple[RunRecord, Done]:
    """A new run's record, or the resumed run's record and the requests it already has."""
    if not cfg.get("resume"):
        return run_record(cfg, new_run_id(), context), set()
    record = load_run_record(results_dir, str(cfg["resume"]))
    check_same_config(record, cfg)
    record.resumes += 1
    record.status, record.ended_at = "running", None
    return record, finished_requests(results_dir, record.run_id)


def emulator_profiles_json(cells: list[Cell]) -> str | None:
    """The latency profiles the emulated cells ran against (the benchmark's truth)."""
    profiles = {json.dumps(c.config["profile"], sort_keys=True) for c in cells
                if is_emulated(c.config)}
    return json.dumps([json.loads(p) for p in sorted(profiles)]) if profiles else None


class RunInterrupted(Exception):
    """Ctrl-C: rows so far are flushed; the run can be resumed."""

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id


def _execute(cells: list[Cell], endpoints: dict[str, Endpoint], record: RunRecord,
             writer: RequestWriter, plan: list[PlannedRequest]) -> RunStats:
    """Run the event loop; on Ctrl-C flush what was measured and mark the run interrupted."""
    record.workers, record.backend = workers_for(cells), backend_for(cells)
    record.hosts, cluster = [record.host], ClusterReport()
    stats = RunStats(total=len(plan), limit_ms=client_lag_limit_ms(cells),
                     streams=max_streams(cells))
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as loop_runner:
            loop_runner.run(_drive(cells, endpoints, record, writer, plan, stats, cluster))
        record.status = "finished"
    except KeyboardInterrupt:
        record.status = "interrupted"
        raise RunInterrupted(record.run_id) from None
    except ActorLost:
        record.status = "failed"
        raise
    finally:
        if record.backend == "ray":
            cluster.apply(record)
        try:
            writer.flush()
        finally:  # the run record is written even when the last rows could not be
            finish_record(record, writer, stats)
        if not has_sessions(cells):  # agent sessions run tools in this process: lag is expected
            warn_if_client_bound(stats, record.workers)
    return stats


def max_streams(cells: list[Cell]) -> int:
    """Requests in flight at once at most: closed loop ``concurrency``, open loop
    ``max_in_flight`` (the largest among the cells)."""
    return max(int(c.workload.get("max_in_flight", 256)) if c.workload.get("rate")
               else int(c.workload["concurrency"]) for c in cells)


def finish_record(record: RunRecord, writer: RequestWriter, stats: RunStats) -> None:
    record.ended_at = datetime.now(UTC)
    record.requests = writer.rows_written - len(writer.unwritten)
    record.errors = stats.errors
    record.loop_lag_p99_ms = stats.load.loop_lag_p99_ms
    record.loop_lag_max_ms = stats.load.loop_lag_max_ms
    record.client_cpu_pct = stats.load.cpu_pct
    write_run_record(writer.results_dir, record)


def client_lag_limit_ms(cells: list[Cell]) -> float:
    """``workload.max_client_lag_ms`` (the strictest among the cells)."""
    return min(float(c.workload.get("max_client_lag_ms", 5.0)) for c in cells)
