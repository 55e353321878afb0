"""Records: what a provider measures (``Measurement``) and the Parquet row (``RequestRow``).

Column names, units and definitions are documented in docs/columns.md; the
Arrow schema below is generated from these dataclasses, so they are the one
definition of the ``requests`` dataset.
"""

from __future__ import annotations

import dataclasses
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

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass
class RequestRow:
    """One row of the ``requests`` dataset: the cell's context plus the measurement."""

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
    ttft_reasoning_ms: float | None = None  # t_start → first reasoning delta (OpenAI-compatible)
    usage_source: str | None = None  # "api": token counts from the API; "client": counted here
    client_version: str | None = None  # version of the client library named in `client`

    @classmethod
    def build(cls, context: dict[str, Any], measurement: Measurement) -> RequestRow:
        """Merge the runner's context with a provider's measurement."""
        measured = {name: getattr(measurement, name) for name in _MEASUREMENT_FIELDS}
        row = cls(**context, **measured)  # shallow: asdict's deep copy costs ~0.5 ms a row
        if row.send_delay_ms is not None and row.total_ms is not None:
            row.latency_from_scheduled_ms = row.send_delay_ms + row.total_ms
        return row


_MEASUREMENT_FIELDS = [f.name for f in dataclasses.fields(Measurement) if f.name != "text"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "bool": pa.bool_(),
    "int": pa.int64(),
    "float": pa.float64(),
    "list[float]": pa.list_(pa.float64()),
    "Any": pa.timestamp("us", tz="UTC"),
}


def _arrow_type(annotation: str) -> pa.DataType:
    base = annotation.replace(" | None", "").strip()
    return _ARROW_TYPES[base]


REQUESTS_SCHEMA = pa.schema(
    [pa.field(f.name, _arrow_type(str(f.type))) for f in dataclasses.fields(RequestRow)]
)
