"""OpenTelemetry export: spans (and request rows) as OTLP/HTTP JSON traces, and request
metrics as GenAI client histograms, with the GenAI semantic-convention names, so Jaeger,
Tempo, Langfuse or Prometheus (via a collector) can show latlab's data.

One trace per agent session (trace id = the session id); a plain request row becomes a
``chat {model}`` span of a trace per run and cell. POSTed to ``<endpoint>/v1/traces``;
metrics (``gen_ai.client.operation.duration``, ``…time_to_first_chunk``,
``gen_ai.client.token.usage``) to ``<endpoint>/v1/metrics``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from latlab.analysis.commands import LATEST_NEEDS, latest_run_ids
from latlab.analysis.query import open_results
from latlab.runner.core.errors import LatlabError

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_OK, STATUS_ERROR = 1, 2
PROVIDER_NAMES = {"bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}
BATCH = 512


def _hex(text: str, length: int) -> str:
    """A stable id of ``length`` hex digits (kept as is when it already is one)."""
    if len(text) == length and all(c in "0123456789abcdef" for c in text):
        return text
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attributes(pairs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in pairs.items() if v is not None]


def _nanos(at: datetime, duration_ms: float | None) -> tuple[str, str]:
    start = int(at.timestamp() * 1e9)
    return str(start), str(start + int((duration_ms or 0.0) * 1e6))


def genai_provider(provider: str | None) -> str:
    name = (provider or "").lower()
    return next((v for k, v in PROVIDER_NAMES.items() if k in name), "anthropic")


def span_name_and_attributes(s: Mapping[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """The OTel name, kind and attributes of one latlab span row."""
    common = {"gen_ai.conversation.id": s["session_id"], "latlab.run_id": s["run_id"],
              "latlab.kind": s["kind"], "latlab.category": s["category"],
              "latlab.cell": s["cell"], "latlab.task": s["task"], "latlab.driver": s["driver"]}
    if s["kind"] == "model_call":
        ttft = s["ttft_ms"] / 1000 if s["ttft_ms"] is not None else None
        return f"chat {s['name']}", SPAN_KIND_CLIENT, {
            **common, "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": genai_provider(s["provider"]),
            "gen_ai.request.model": s["model"] or s["name"],
            "gen_ai.request.stream": s["streaming"],
            "gen_ai.usage.input_tokens": s["input_tokens"],
            "gen_ai.usage.output_tokens": s["output_tokens"],
            "gen_ai.response.time_to_first_chunk": ttft,
            "latlab.request_id": s["request_id"], "error.type": s["error_type"]}
    if s["kind"] == "tool_call":
        return f"execute_tool {s['name']}", SPAN_KIND_INTERNAL, {
            **common, "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": s["name"],
            "gen_ai.tool.call.id": s["tool_use_id"], "latlab.exit_code": s["exit_code"],
            "error.type": s["error_type"]}
    if s["kind"] == "http_call":
        return str(s["method"] or "HTTP"), SPAN_KIND_CLIENT, {
            **common, "http.request.method": s["method"], "http.route": s["endpoint"],
            "server.address": s["host"], "http.response.status_code": s["http_status"],
            "latlab.ttfb_ms": s["ttfb_ms"], "latlab.request_id": s["request_id"],
            "error.type": s["error_type"]}
    if s["kind"] == "session":
        return "invoke_agent latlab", SPAN_KIND_INTERNAL, {
            **common, "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": genai_provider(s["provider"]), "error.type": s["error_type"]}
    return str(s["name"]), SPAN_KIND_INTERNAL, {**common, "error.type": s["error_type"]}


def otlp_span(s: Mapping[str, Any]) -> dict[str, Any]:
    name, kind, attributes = span_name_and_attributes(s)
    start, end = _nanos(s["started_at"], s["duration_ms"])
    span: dict[str, Any] = {
        "traceId": _hex(str(s["session_id"]), 32), "spanId": _hex(str(s["span_id"]), 16),
        "name": name, "kind": kind, "startTimeUnixNano": start, "endTimeUnixNano": end,
        "attributes": _attributes(attributes),
        "status": {"code": STATUS_ERROR if s["status"] == "error" else STATUS_OK,
                   "message": s["error_message"] or ""}}
    if s["parent_id"]:
        span["parentSpanId"] = _hex(str(s["parent_id"]), 16)
    return span


def request_span(r: Mapping[str, Any]) -> dict[str, Any]:
    """A plain request row (no session) as a ``chat`` span; one trace per run and cell."""
    session = f"{r['run_id']}/{r['cell']}"
    row_key = f"{session}/{r['iteration']}/{r['warmup']}/{r['started_at']}"
    return otlp_span({
        "run_id": r["run_id"], "session_id": session, "span_id": row_key, "parent_id": None,
        "kind": "model_call", "name": r["model_id"], "category": "model", "cell": r["cell"],
        "task": None, "driver": None, "provider": r["provider"], "model": r["model_id"],
        "streaming": r["stream"], "input_tokens": r["input_tokens"],
        "output_tokens": r["output_tokens"], "ttft_ms": r["ttft_ms"],
        "request_id": r["request_id"], "error_type": r["error_type"],
        "error_message": r["error_message"], "started_at": r["started_at"],
        "duration_ms": r["total_ms"], "status": "error" if r["error_type"] else "ok"})


def payload(spans: Iterable[dict[str, Any]]) -> dict[str, Any]:
    resource = {"attributes": _attributes({"service.name": "latlab"})}
    scope = {"scope": {"name": "latlab"}, "spans": list(spans)}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]}


def _rows(con: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def collect(results_dir: Path,
            run_ids: list[str] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """OTLP spans: every span of the runs and every request row without a span of its own;
    and every request row (for the metrics)."""
    con = open_results(results_dir, run_ids, needs=("spans", *LATEST_NEEDS))
    try:
        selected = "SELECT run_id FROM requests UNION SELECT run_id FROM spans"
        ids = [r[0] for r in con.execute(selected).fetchall()] if run_ids else None
        params = {"ids": ids or latest_run_ids(con, 1)}
        spans = _rows(con, "SELECT * FROM spans WHERE list_contains($ids, run_id)", params)
        rows = _rows(con, "SELECT * FROM requests WHERE list_contains($ids, run_id)", params)
    finally:
        con.close()
    plain = [request_span(r) for r in rows if r["span_id"] is None]
    return [otlp_span(s) for s in spans] + plain, rows


# Bucket boundaries the GenAI semantic conventions recommend.
DURATION_BOUNDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                   40.96, 81.92]
TOKEN_BOUNDS = [float(4 ** i) for i in range(14)]  # 1, 4, 16, … 67108864
Metric = tuple[str, str, list[float], Callable[[dict[str, Any]], Any], dict[str, str]]
METRICS: tuple[Metric, ...] = (  # name, unit, bounds, (row -> value or None), extra attributes
    ("gen_ai.client.operation.duration", "s", DURATION_BOUNDS,
     lambda r: r["total_ms"] / 1000 if r["total_ms"] is not None else None, {}),
    ("gen_ai.client.operation.time_to_first_chunk", "s", DURATION_BOUNDS,
     lambda r: r["ttft_ms"] / 1000 if r["ttft_ms"] is not None and r["stream"] else None, {}),
    ("gen_ai.client.token.usage", "{token}", TOKEN_BOUNDS,
     lambda r: r["input_tokens"], {"gen_ai.token.type": "input"}),
    ("gen_ai.client.token.usage", "{token}", TOKEN_BOUNDS,
     lambda r: r["output_tokens"], {"gen_ai.token.type": "output"}),
)


def _point(values: list[float], bounds: list[float], attributes: dict[str, Any],
           start: str, end: str) -> dict[str, Any]:
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[next((i for i, b in enumerate(bounds) if v <= b), len(bounds))] += 1
    return {"attributes": _attributes(attributes), "startTimeUnixNano": start,
            "timeUnixNano": end, "count": str(len(values)), "sum": sum(values),
            "min": min(values), "max": max(values), "bucketCounts": [str(c) for c in counts],
            "explicitBounds": bounds}


def metrics_payload(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """GenAI client histograms over request rows (measured, not warm-up), one data point
    per provider × model × error type, delta temporality over the rows' time span."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        if not r["warmup"]:
            groups.setdefault((r["provider"], r["model_id"], r["error_type"]), []).append(r)
    metrics: dict[tuple[str, str], dict[str, Any]] = {}
    for (provider, model, error), members in sorted(groups.items(), key=str):
        start = _nanos(min(r["started_at"] for r in members), 0)[0]
        end = _nanos(max(r["started_at"] for r in members), 0)[0]
        base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": genai_provider(provider),
                "gen_ai.request.model": model, "latlab.provider": provider, "error.type": error}
        for name, unit, bounds, value, extra in METRICS:
            values = [float(v) for v in (value(r) for r in members) if v is not None]
            if values:
                metric = metrics.setdefault((name, unit), {
                    "name": name, "unit": unit,
                    "histogram": {"aggregationTemporality": 1, "dataPoints": []}})
                metric["histogram"]["dataPoints"].append(
                    _point(values, bounds, {**base, **extra}, start, end))
    resource = {"attributes": _attributes({"service.name": "latlab"})}
    scope = {"scope": {"name": "latlab"}, "metrics": list(metrics.values())}
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [scope]}]}


def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> None:
    try:
        response = client.post(url, content=json.dumps(body),
                               headers={"content-type": "application/json"})
    except httpx.HTTPError as exc:
        raise LatlabError(f"--endpoint: cannot export to {url}: {exc}") from exc
    if response.status_code >= 300:
        raise LatlabError(f"--endpoint: {url} answered {response.status_code}: "
                          f"{response.text[:200]}")


def export_command(results_dir: Path, run_ids: list[str] | None, endpoint: str) -> str:
    """POST the runs' spans to ``endpoint``/v1/traces (in batches) and the request metrics
    to ``endpoint``/v1/metrics; returns a summary line."""
    spans, rows = collect(results_dir, run_ids)
    base = endpoint.rstrip("/")
    with httpx.Client(timeout=30.0) as client:
        for i in range(0, len(spans), BATCH):
            _post(client, base + "/v1/traces", payload(spans[i:i + BATCH]))
        if rows:
            _post(client, base + "/v1/metrics", metrics_payload(rows))
    return (f"exported {len(spans)} spans to {base}/v1/traces and metrics of {len(rows)} "
            f"requests to {base}/v1/metrics")
