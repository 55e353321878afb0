"""Prometheus exposition of the monitor, through prometheus-client (OpenMetrics when the
scraper asks for it, which carries the request-id exemplars)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# LLM latencies: 50 ms (a cached first byte) to 60 s (a long answer).
LATENCY_BUCKETS_S = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0,
                     20.0, 30.0, 45.0, 60.0)
TPS_BUCKETS = (1.0, 5.0, 10.0, 20.0, 30.0, 50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0)
GRADES = ("A", "B", "C", "D", "F")


@dataclass(frozen=True)
class ProbeLabels:
    """The labels of every per-cell series."""

    monitor: str
    provider: str
    model: str
    region: str
    guardrail: str
    prompt: str


LABELS = tuple(f.name for f in fields(ProbeLabels))


@dataclass(frozen=True)
class Observation:
    """One request of a round, as exported."""

    labels: ProbeLabels
    ttfb_ms: float | None
    ttft_ms: float | None
    total_ms: float | None
    output_tps: float | None
    error_type: str
    request_id: str | None


@dataclass(frozen=True)
class CellStatus:
    """A cell's SLO state after a round."""

    labels: ProbeLabels
    cell: str
    grade: str | None
    attainment: Mapping[str, float]  # objective -> good share over the budget period
    budget_remaining: Mapping[str, float]  # objective -> share of the error budget left


@dataclass(frozen=True)
class Headroom:
    """The least rate-limit headroom a cell saw in a round, per limit."""

    labels: ProbeLabels
    limit: str  # requests | input_tokens | output_tokens | tokens
    remaining_ratio: float


def _histogram(registry: CollectorRegistry, name: str, doc: str,
               buckets: tuple[float, ...]) -> Histogram:
    return Histogram(name, doc, LABELS, buckets=buckets, registry=registry)


class MonitorMetrics:
    """The monitor's series in their own registry (nothing of the process's default one)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.ttfb = _histogram(r, "latlab_ttfb_seconds", "time to the response headers",
                               LATENCY_BUCKETS_S)
        self.ttft = _histogram(r, "latlab_ttft_seconds", "time to the first token",
                               LATENCY_BUCKETS_S)
        self.total = _histogram(r, "latlab_total_seconds", "time to the last byte",
                                LATENCY_BUCKETS_S)
        self.tps = _histogram(r, "latlab_output_tokens_per_second", "output tokens/s after "
                              "the first token", TPS_BUCKETS)
        self.requests = Counter("latlab_requests", "probe requests by error_type (none = ok)",
                                (*LABELS, "error_type"), registry=r)
        self.attainment = Gauge("latlab_slo_attainment_ratio", "good share over the SLO "
                                "budget period", (*LABELS, "cell", "objective"), registry=r)
        self.budget = Gauge("latlab_slo_error_budget_remaining_ratio", "error budget left "
                            "(1 untouched, 0 spent)", (*LABELS, "cell", "objective"), registry=r)
        self.grade = Gauge("latlab_grade", "1 for the cell's grade in the last round, else 0",
                           (*LABELS, "cell", "grade"), registry=r)
        self.last_probe = Gauge("latlab_last_probe_timestamp_seconds", "end of the last round "
                                "(Unix time)", ("monitor",), registry=r)
        self.rounds = Counter("latlab_monitor_rounds", "rounds run", ("monitor",), registry=r)
        self.headroom = Gauge("latlab_ratelimit_headroom_ratio", "least remaining/limit seen "
                              "in the last round", (*LABELS, "limit"), registry=r)
        self.firing = Gauge("latlab_burn_alert_firing", "1 while a burn-rate alert fires",
                            ("monitor", "alert", "severity", "cell", "objective"), registry=r)

    def observe(self, obs: Observation) -> None:
        labels = astuple(obs.labels)
        exemplar = {"request_id": obs.request_id[:100]} if obs.request_id else None
        self.requests.labels(*labels, obs.error_type).inc(1, exemplar=exemplar)
        for histogram, value, scale in ((self.ttfb, obs.ttfb_ms, 1e-3),
                                        (self.ttft, obs.ttft_ms, 1e-3),
                                        (self.total, obs.total_ms, 1e-3),
                                        (self.tps, obs.output_tps, 1.0)):
            if value is not None and obs.error_type == "none":
                histogram.labels(*labels).observe(value * scale, exemplar=exemplar)

    def set_cell(self, status: CellStatus) -> None:
        labels = (*astuple(status.labels), status.cell)
        for objective, value in status.attainment.items():
            self.attainment.labels(*labels, objective).set(value)
        for objective, value in status.budget_remaining.items():
            self.budget.labels(*labels, objective).set(value)
        for grade in GRADES:
            self.grade.labels(*labels, grade).set(1.0 if grade == status.grade else 0.0)

    def set_headroom(self, headroom: Headroom) -> None:
        self.headroom.labels(*astuple(headroom.labels), headroom.limit).set(
            headroom.remaining_ratio)

    def end_round(self, monitor: str, when: float) -> None:
        self.last_probe.labels(monitor).set(when)
        self.rounds.labels(monitor).inc()

    def serve(self, host: str, port: int) -> tuple[str, Callable[[], None]]:
        """Serve /metrics in a background thread; its URL and how to stop it."""
        server, thread = start_http_server(port, host, self.registry)
        url = f"http://{host}:{server.server_port}/metrics"

        def close() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return url, close
