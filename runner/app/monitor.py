"""``latlab monitor``: the same experiment, round after round, each round a normal run linked by
its monitor id; after each round the round's rows feed /metrics and the burn-rate views
(analysis/80_burn_rates.sql) decide which alerts fire (posted to monitor.webhook).

Each round is a ``latlab run`` child process in its own session: /metrics (a thread here)
never waits for a round's event loop, a crashing round cannot take the monitor down, and a
terminal's Ctrl-C reaches the monitor only (it decides when the round stops)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from latlab.analysis.alerts import BurnAlert
from latlab.analysis.probes import (
    AttainmentCache,
    RoundReadout,
    last_round,
    read_round,
    round_run,
)
from latlab.runner.app.hydra_app import cell_composer, quiet_http_loggers
from latlab.runner.app.run import RunContext, plan_cells, validate
from latlab.runner.config.compose import hydra_initialised, plain
from latlab.runner.core.errors import ConfigError, LatlabError, ResultsError
from latlab.runner.engine.progress import console
from latlab.runner.monitor.loop import StopSignal, run_rounds
from latlab.runner.monitor.metrics import (
    CellStatus,
    Headroom,
    MonitorMetrics,
    Observation,
    ProbeLabels,
)
from latlab.runner.monitor.settings import MonitorSettings, load_settings
from latlab.runner.monitor.webhook import AlertEvent, AlertTracker, post
from latlab.runner.results import storage
from latlab.runner.results.compact import compact
from latlab.runner.results.write import ensure_writable


def say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@dataclass
class Monitor:
    """A monitor's fixed parts: config, settings, the cells' labels, metrics and alert state."""

    cfg: dict[str, Any]
    context: RunContext
    settings: MonitorSettings
    regions: dict[str, str]
    metrics: MonitorMetrics = field(default_factory=MonitorMetrics)
    tracker: AlertTracker | None = None
    counts: AttainmentCache = field(default_factory=AttainmentCache)
    compacted_at: float | None = None  # time.monotonic() of the last compaction

    @property
    def results_dir(self) -> Path:
        return Path(self.cfg["results_dir"])

    def labels(self, row: dict[str, Any]) -> ProbeLabels:
        return ProbeLabels(self.settings.monitor_id, str(row["provider"]), str(row["model"]),
                           self.regions.get(str(row["cell"]), "global"), str(row["guardrail"]),
                           str(row["prompt"]))


def compose_monitor(overrides: Sequence[str]) -> tuple[dict[str, Any], RunContext]:
    """The composed config (inside hydra_initialised) and the run context of every round."""
    from hydra import compose

    full = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    choices = {str(k): str(v) for k, v in full.hydra.runtime.choices.items()
               if not str(k).startswith("hydra") and v is not None}
    cfg = plain(compose(config_name="config", overrides=list(overrides)))
    return cfg, RunContext(cell_composer(overrides), list(overrides), choices)


def prepare(overrides: Sequence[str]) -> Monitor:
    """Check everything before the first round: bad input writes nothing."""
    cfg, context = compose_monitor(overrides)
    settings = load_settings(cfg, context.choices.get("experiment"))
    if cfg.get("resume"):
        raise ConfigError("resume: not for the monitor; it continues its monitor id by itself")
    validate(cfg)
    cells = plan_cells(cfg, context)
    ensure_writable(Path(cfg["results_dir"]))
    regions = {c.name: str(c.config["provider"].get("region") or "global") for c in cells}
    tracker = AlertTracker(settings.monitor_id) if settings.webhook else None
    return Monitor(cfg, context, settings, regions, tracker=tracker)


# every round's run: no Hydra job folder or log per round (a year of 5-minute rounds is 100k)
ROUND_OVERRIDES = ("hydra.output_subdir=null", "hydra.run.dir=${results_dir}",
                   "hydra/job_logging=disabled", "hydra/hydra_logging=disabled")


def round_command(monitor: Monitor, number: int) -> list[str]:
    """``latlab run`` with the monitor's overrides, tagged with its id and this round."""
    kept = [o for o in monitor.context.overrides
            if o.partition("=")[0] not in ("monitor.id", "monitor.round")]
    return [sys.executable, "-m", "latlab", "run", *kept, *ROUND_OVERRIDES,
            f"monitor.id={monitor.settings.monitor_id}", f"monitor.round={number}"]


def run_child(command: list[str]) -> int:
    """Run one round to its end; a second stop request (KeyboardInterrupt here) passes
    Ctrl-C on to it, which keeps its rows and marks the run interrupted."""
    child = subprocess.Popen(command, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        child.wait()
        raise


def run_round(monitor: Monitor, number: int) -> int:
    """One round: a run tagged with the monitor id and round; the requests it sent."""
    status = run_child(round_command(monitor, number))
    if status == 2:
        raise ConfigError(f"round {number}: `latlab run` refused the config (above)")
    found = round_run(monitor.results_dir, monitor.settings.monitor_id, number)
    if found is None:
        say(f"round {number}: no run recorded (latlab run exited with {status})")
        return 0
    run_id, requests, errors = found
    say(f"round {number}: run {run_id}, {requests} requests, {errors} errors")
    try:
        readout = read_round(monitor.results_dir, run_id, monitor.settings.monitor_id,
                             monitor.cfg["slo"])
        monitor.counts.add(readout.counts)
        export(monitor, readout, monitor.counts.attainment(monitor.settings.monitor_id))
    except (ResultsError, duckdb.Error, OSError) as exc:
        say(f"round {number}: metrics and alerts not updated ({exc})")
    compact_hourly(monitor)
    return requests


COMPACT_EVERY_S = 3600.0  # the monitor merges finished rounds into day files this often


def compact_hourly(monitor: Monitor) -> None:
    """Between rounds, once an hour: merge the rounds started over an hour ago into their
    day's file (runner/results/compact.py), so a long history stays quick to read."""
    now = time.monotonic()
    due = monitor.compacted_at is None or now - monitor.compacted_at >= COMPACT_EVERY_S
    if not due or storage.is_remote(monitor.results_dir):
        return
    monitor.compacted_at = now
    try:
        done = compact(monitor.results_dir, datetime.now(UTC) - timedelta(seconds=COMPACT_EVERY_S))
    except (LatlabError, OSError) as exc:
        say(f"compaction skipped ({exc})")
        return
    if done.runs or done.removed:
        say(done.summary())


def export(monitor: Monitor, readout: RoundReadout,
           attainment: Mapping[tuple[str, str], tuple[float, float]]) -> None:
    """The round's rows into the histograms, the SLO state into gauges, alerts out."""
    metrics = monitor.metrics
    by_cell: dict[str, ProbeLabels] = {}
    for row in readout.observations:
        by_cell[row["cell"]] = labels = monitor.labels(row)
        metrics.observe(Observation(labels, row["ttfb_ms"], row["ttft_ms"], row["total_ms"],
                                    row["output_tps"], row["error_type"], row["request_id"]))
    for cell, labels in by_cell.items():
        metrics.set_cell(_status(readout, attainment, cell, labels))
    for row in readout.headroom:
        if row["headroom"] is not None and row["cell"] in by_cell:
            metrics.set_headroom(Headroom(by_cell[row["cell"]], row["limit_name"],
                                          float(row["headroom"])))
    metrics.end_round(monitor.settings.monitor_id, time.time())
    publish_alerts(monitor, readout.alerts)


def _status(readout: RoundReadout, attainment: Mapping[tuple[str, str], tuple[float, float]],
            cell: str, labels: ProbeLabels) -> CellStatus:
    mine = {objective: v for (c, objective), v in attainment.items() if c == cell}
    return CellStatus(labels, cell, readout.grades.get(cell),
                      {o: float(v[0]) for o, v in mine.items()},
                      {o: float(v[1]) for o, v in mine.items()})


def alert_event(alert: BurnAlert) -> AlertEvent:
    labels = {"alertname": f"LatlabBurnRate_{alert.alert}", "severity": alert.severity,
              "monitor": alert.monitor_id or "", "cell": alert.cell,
              "objective": alert.objective, "provider": alert.provider, "model": alert.model}
    return AlertEvent(labels, alert.why())


def publish_alerts(monitor: Monitor, alerts: list[BurnAlert]) -> None:
    """Firing gauges; the webhook gets what started and what resolved since the last round."""
    monitor.metrics.firing.clear()
    for alert in alerts:
        monitor.metrics.firing.labels(alert.monitor_id or "", alert.alert, alert.severity,
                                      alert.cell, alert.objective).set(float(alert.firing))
    for alert in alerts:
        if alert.firing:
            say(alert.why())
    if monitor.tracker is None or monitor.settings.webhook is None:
        return
    for body in monitor.tracker.update(alert_event(a) for a in alerts if a.firing):
        failure = post(monitor.settings.webhook, body)
        if failure is not None:
            say(f"alert webhook: not delivered ({failure}); the next change is posted anew")


@contextmanager
def metrics_served(monitor: Monitor) -> Iterator[None]:
    with ExitStack() as stack:
        if monitor.settings.metrics_port is not None:
            url, close = monitor.metrics.serve(monitor.settings.metrics_host,
                                               monitor.settings.metrics_port)
            stack.callback(close)
            say(f"metrics: {url}")
        yield


def monitor_command(overrides: Sequence[str]) -> int:
    """Run rounds until stopped; the number of rounds run."""
    quiet_http_loggers()
    with hydra_initialised():
        monitor = prepare(overrides)
        first = last_round(monitor.results_dir, monitor.settings.monitor_id) + 1
        if first > 1:  # a restart: the budget period's counts, read once
            monitor.counts.load(monitor.results_dir, monitor.cfg["slo"],
                                monitor.settings.monitor_id)
        say(f"monitor {monitor.settings.monitor_id}: round {first} onwards, every "
            f"{monitor.settings.every_s:g}s; stop with Ctrl-C")
        with metrics_served(monitor), StopSignal().installed() as stop:
            try:
                done = run_rounds(monitor.settings, lambda n: run_round(monitor, n), stop, first)
            except KeyboardInterrupt:
                say("monitor stopped during a round: its rows so far are kept")
                return 0
    say(f"monitor {monitor.settings.monitor_id}: stopped after {done} rounds")
    return done
