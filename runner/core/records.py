"""Records: what a provider measures (``Measurement``), the Parquet row (``RequestRow``) and
the run record (``RunRecord``); spans are in core/spans.py.

Column names, units and definitions are documented in docs/columns.md; the
Arrow schema below is generated from these dataclasses, so they are the one
definition of the ``requests`` dataset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = 1
PARQUET_COMPRESSION = "zstd"  # every Parquet file latlab writes


@dataclass
class Measurement:
    """One request as the provider saw it. Times in ms; None where not measured."""

    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    generation_ms: float | None = None
    total_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    output_tps: float | None = None
    server_latency_ms: float | None = None
    server_first_byte_ms: float | None = None
    stop_reason: str | None = None
    status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    retries: int = 0
    new_connection: bool | None = None
    guardrail_action: str | None = None
    text: str | None = None  # the answer's text (non-streamed Messages); not a row column
    ttft_reasoning_ms: float | None = None
    usage_source: str | None = None
    # rate-limit headers of the response (providers/ratelimits.py): limit, remaining and
    # seconds to the reset, per limit; anthropic-ratelimit-* and x-ratelimit-*
    ratelimit_requests_limit: int | None = None
    ratelimit_requests_remaining: int | None = None
    ratelimit_requests_reset_s: float | None = None
    ratelimit_input_tokens_limit: int | None = None
    ratelimit_input_tokens_remaining: int | None = None
    ratelimit_input_tokens_reset_s: float | None = None
    ratelimit_output_tokens_limit: int | None = None
    ratelimit_output_tokens_remaining: int | None = None
    ratelimit_output_tokens_reset_s: float | None = None
    ratelimit_tokens_limit: int | None = None
    ratelimit_tokens_remaining: int | None = None
    ratelimit_tokens_reset_s: float | None = None
    retry_after_s: float | None = None  # retry-after (a 429 or 529 says when to come back)

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass(kw_only=True)
class RowContext:
    """Where a request was made: the cell's context, the columns before its measurement."""

    run_id: str
    cell: str
    provider: str
    api: str
    model: str
    model_id: str
    prompt: str
    guardrail: str
    stream: bool
    concurrency: int
    iteration: int
    warmup: bool
    started_at: Any  # datetime (UTC, µs)
    client: str = "httpx"
    transport: str = "aiohttp"
    emulated: bool = False
    worker: int = 0
    scheduled_ms: float | None = None  # planned send time, ms after the run's t0
    send_delay_ms: float | None = None  # actual send minus planned send (client queueing)


@dataclass(kw_only=True)
class RequestRow(Measurement, RowContext):
    """One row of the ``requests`` dataset: the cell's context, the measurement (the fields of
    ``Measurement``, in its order) and what the runner adds after it. Columns in that order."""

    prompt_index: int = 0
    prompt_label: str | None = None
    cost_usd: float | None = None
    schema_version: int = SCHEMA_VERSION
    client_late: bool = False  # sent late or the client's loop lagged (workload.max_client_lag_ms)
    latency_from_scheduled_ms: float | None = None  # send_delay_ms + total_ms
    session_id: str | None = None  # agent sessions: the session this model call belongs to
    span_id: str | None = None  # agent sessions: the model_call span (spans.span_id)
    batch_id: str | None = None  # multi-call batches (runner/engine/batches.py): shared by its rows
    batch_kind: str | None = None  # parallel | routing | fallback | agent | semantic_cache
    batch_mode: str | None = None  # the variant compared (sequential, concurrent, routed, ...)
    batch_step: int | None = None  # 0-based call index within the batch
    batch_role: str | None = None  # what this call did in the batch (classifier, summary, ...)
    batch_wall_ms: float | None = None  # the whole batch's wall time, on each of its rows
    route: str | None = None  # routing: the model class picked (small | large)
    route_correct: bool | None = None  # routing: route == the prompt's label
    client_cache: str | None = None  # semantic_cache: hit | miss (client-side cache)
    client_cache_correct: bool | None = None  # semantic_cache hits: cached answer fits the prompt
    client_version: str | None = None  # version of the client library named in `client`
    turn: int | None = None  # replay / conversation: the call's 0-based turn in its session
    context_tokens: int | None = None  # conversation: the prompt's tokens (input + cache)
    planned_input_tokens: int | None = None  # replay / drawn lengths: the input asked for
    planned_output_tokens: int | None = None  # replay / drawn lengths: max_tokens asked for
    request_body: str | None = None  # workload.capture_bodies: the request (JSON), redacted

    @classmethod
    def build(cls, context: dict[str, Any], measurement: Measurement) -> RequestRow:
        """Merge the runner's context with a provider's measurement."""
        measured = {name: getattr(measurement, name) for name in _MEASUREMENT_FIELDS}
        row = cls(**context, **measured)  # shallow: asdict's deep copy costs ~0.5 ms a row
        if row.send_delay_ms is not None and row.total_ms is not None:
            row.latency_from_scheduled_ms = row.send_delay_ms + row.total_ms
        return row


NOT_COLUMNS = frozenset({"text"})  # Measurement.text: the answer, read by batches, never written
_MEASUREMENT_FIELDS = [f.name for f in dataclasses.fields(Measurement)
                       if f.name not in NOT_COLUMNS]
ROW_COLUMNS = [f.name for f in dataclasses.fields(RequestRow) if f.name not in NOT_COLUMNS]

# The one mapping from a record's field annotations to Arrow types (requests, runs, spans).
_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "list[float]": pa.list_(pa.float64()),
    "list[str]": pa.list_(pa.string()),
    "Any": pa.timestamp("us", tz="UTC"),  # datetimes (UTC, µs)
    "datetime": pa.timestamp("us", tz="UTC"),
    "dict[str, Any]": pa.string(),  # written as JSON text
}


def arrow_schema(record: type, skip: Collection[str] = ()) -> pa.Schema:
    """The Arrow schema of a record dataclass: its fields in order, private ones and ``skip``
    left out, ``X | None`` nullable X."""
    return pa.schema([
        pa.field(f.name, _ARROW_TYPES[str(f.type).replace(" | None", "").strip()])
        for f in dataclasses.fields(record) if not f.name.startswith("_") and f.name not in skip
    ])


REQUESTS_SCHEMA = arrow_schema(RequestRow, NOT_COLUMNS)


@dataclass
class RunRecord:
    """The ``runs`` row of one run; rewritten at the end with status and counts."""

    run_id: str
    started_at: Any
    ended_at: Any = None
    status: str = "running"
    run_name: str | None = None
    latlab_version: str = ""
    host: str = ""
    python_version: str = ""
    config_yaml: str = ""
    overrides: list[str] = field(default_factory=list)
    choices_json: str = "{}"
    experiment: str | None = None
    sweep_job: int | None = None
    cells: int = 0
    requests: int = 0
    errors: int = 0
    emulator_json: str | None = None
    resumes: int = 0
    loop_lag_p99_ms: float | None = None
    client_cpu_pct: float | None = None
    workers: int = 1
    loop_lag_max_ms: float | None = None
    backend: str = "process"  # workload.backend: process (this host) | ray (Ray actors)
    hosts: list[str] = field(default_factory=list)  # the hosts whose workers sent the requests
    actors_json: str | None = None  # backend=ray: per actor: host, pid, clock offset, lag, CPU
    bottleneck_actors: list[str] = field(default_factory=list)  # "INDEX@HOST": client-bound
    actors_lost: list[str] = field(default_factory=list)  # "INDEX@HOST": died mid-run
    requests_lost: int = 0  # requests dealt to lost actors with no row (in flight or unflushed)
    monitor_id: str | None = None  # `latlab monitor`: the monitor this run is a round of
    monitor_round: int | None = None  # 1-based round number within that monitor


RUNS_SCHEMA = arrow_schema(RunRecord)
