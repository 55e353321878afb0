"""Time: make each planned request through its cell's provider and turn it into a row.

Providers are built once per distinct provider config (one shared HTTP client each),
the emulator once per distinct latency profile. Retries (``workload.retries``) are
made here, so every provider retries alike and the row counts them.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections import deque
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from latlab.providers.clients import client_version
from latlab.providers.registry import kind_for
from latlab.runner.config.prompts import Prompt, load_prompts, synthetic_text
from latlab.runner.core.errors import RETRYABLE
from latlab.runner.core.protocol import Endpoint, Provider, RequestSpec
from latlab.runner.core.records import Measurement, RequestRow
from latlab.runner.core.timing import now_ns
from latlab.runner.engine.batch import Batch
from latlab.runner.engine.batches import build_batch
from latlab.runner.engine.conversation import is_conversation, run_conversation
from latlab.runner.engine.cost import cost_usd, prices_for
from latlab.runner.engine.lag import ClientLoad, LagMonitor, is_late
from latlab.runner.engine.plan import Cell, PlannedRequest
from latlab.runner.engine.replay import run_replayed_session
from latlab.runner.engine.traffic import captured_body, shaped_requests
from latlab.runner.results.write import RequestWriter


def request_spec(cfg: Mapping[str, Any], model_id: str, prompt: Prompt) -> RequestSpec:
    """The request a cell sends: one of its prompts, the model id and workload options."""
    prompt_cfg, workload = cfg["prompt"], cfg["workload"]
    system: Any = prompt_cfg.get("system")
    if prompt_cfg.get("system_synthetic_tokens"):
        system = synthetic_text(int(prompt_cfg["system_synthetic_tokens"]))
    if system and prompt_cfg.get("cache_system"):
        system = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
    return RequestSpec(
        model_id=model_id, messages=[{"role": "user", "content": prompt.text}],
        max_tokens=int(workload["max_tokens"]), stream=bool(workload["stream"]),
        timeout_s=float(workload["timeout_s"]), system=system,
        api=str(cfg["provider"].get("api", "messages")),
        guardrail=None if cfg["guardrail"]["name"] == "none" else dict(cfg["guardrail"]))


def model_id_for(cfg: Mapping[str, Any]) -> str:
    return str(cfg["model"]["ids"][kind_for(cfg["provider"]["kind"]).model_id_key])


@dataclass
class CellRuntime:
    """What a cell needs at send time, built once before the first request."""

    cell: Cell
    provider: Provider
    specs: list[RequestSpec]
    prompts: list[Prompt]
    emulated: bool
    prices: Mapping[str, float] = field(default_factory=dict)
    batch: Batch | None = None  # multi-call batch (engine/batches.py); None: one each
    fields: list[dict[str, Any]] = field(default_factory=list)  # per spec: engine/traffic.py

    def pick(self, iteration: int) -> tuple[int, RequestSpec]:
        """Iteration i sends prompt i mod n."""
        index = iteration % len(self.specs)
        return index, self.specs[index]


class RowNote(NamedTuple):
    """What the progress bar and the client verdict need of one row (small, picklable)."""

    error: bool
    ttft_ms: float | None
    warmup: bool
    send_delay_ms: float | None
    late: bool

    @classmethod
    def of(cls, row: RequestRow) -> RowNote:
        return cls(row.error_type is not None, row.ttft_ms, row.warmup, row.send_delay_ms,
                   row.client_late)


@dataclass
class RunStats:
    """Running counters for the progress bar, the run record and the client verdict."""

    total: int
    done: int = 0
    errors: int = 0
    ttfts: deque[float] = field(default_factory=lambda: deque(maxlen=2048))  # recent only
    late: int = 0
    late_sends: int = 0
    send_delay_max_ms: float = 0.0
    limit_ms: float = 5.0
    load: ClientLoad = field(default_factory=ClientLoad)
    streams: int = 1  # requests the run may have in flight at once (the most of any cell)

    def add(self, row: RequestRow) -> None:
        self.note(RowNote.of(row))

    def note(self, note: RowNote) -> None:
        self.done += 1
        self.errors += note.error
        self.late += note.late
        delay = note.send_delay_ms or 0.0
        self.late_sends += delay > self.limit_ms
        self.send_delay_max_ms = max(self.send_delay_max_ms, delay)
        if note.ttft_ms is not None and not note.warmup:
            self.ttfts.append(note.ttft_ms)

    def ttft_median(self) -> float | None:
        """Median TTFT of the most recent measured requests."""
        return statistics.median(self.ttfts) if self.ttfts else None


async def send_with_retries(provider: Provider, spec: RequestSpec, retries: int) -> Measurement:
    """Send; on a retryable failure wait (0.25 s doubling, max 4 s) and retry."""
    measurement = await provider.send(spec)
    attempt = 0
    while measurement.error_type in RETRYABLE and attempt < retries:
        attempt += 1
        await asyncio.sleep(min(0.25 * 2 ** (attempt - 1), 4.0))
        measurement = await provider.send(spec)
    measurement.retries = attempt
    return measurement


class RequestTimer:
    """Sends planned requests and writes their rows."""

    def __init__(self, run_id: str, runtimes: dict[str, CellRuntime], writer: RequestWriter,
                 stats: RunStats) -> None:
        self.run_id, self.runtimes, self.writer, self.stats = run_id, runtimes, writer, stats
        self.t0_ns = now_ns()
        self.monitor: LagMonitor | None = None
        self._fixed: dict[str, dict[str, Any]] = {}  # per cell: its rows' fixed context

    async def send_one(self, planned: PlannedRequest, worker: int, scheduled_ns: int) -> None:
        runtime = self.runtimes[planned.cell.name]
        if runtime.batch is not None:
            await runtime.batch.run(self, runtime, planned, worker, scheduled_ns)
            return
        workload = planned.cell.config["workload"]  # read only (Cell.workload copies it)
        retries = int(workload["retries"])
        def send(spec: RequestSpec) -> Awaitable[Measurement]:
            return send_with_retries(runtime.provider, spec, retries)

        if is_conversation(workload):  # several turns: engine/conversation.py
            await run_conversation(self, runtime, planned, worker, scheduled_ns, send)
            return
        if planned.calls is not None:  # a recorded session's calls: engine/replay.py
            await run_replayed_session(self, runtime.fields, runtime, planned, worker,
                                       scheduled_ns, send)
            return
        sent_ns, started_at = now_ns(), datetime.now(UTC)
        index, spec = runtime.pick(planned.iteration)
        measurement = await send(spec)
        fields = {**(runtime.fields[index] if runtime.fields else {}),
                  "request_body": captured_body(workload, spec)}
        self.write_row(planned, worker, scheduled_ns, sent_ns, started_at, index, measurement,
                       fields=fields)

    def write_row(self, planned: PlannedRequest, worker: int, scheduled_ns: int, sent_ns: int,
                  started_at: datetime, index: int, measurement: Measurement,
                  prices: Mapping[str, float] | None = None,
                  fields: Mapping[str, Any] | None = None) -> None:
        """One row: the cell's context, the measurement, and ``fields`` set on top."""
        runtime = self.runtimes[planned.cell.name]
        context = self._context(planned, runtime, worker, started_at, scheduled_ns)
        context.update(send_delay_ms=(sent_ns - scheduled_ns) / 1e6, prompt_index=index,
                       prompt_label=runtime.prompts[index].label,
                       cost_usd=cost_usd(measurement,
                                         runtime.prices if prices is None else prices))
        row = RequestRow.build(context, measurement)
        for name, value in (fields or {}).items():
            setattr(row, name, value)
        row.client_late = self._client_late(planned, row, sent_ns)
        self.writer.add(row)
        self.stats.add(row)

    def _client_late(self, planned: PlannedRequest, row: RequestRow, sent_ns: int) -> bool:
        """Sent late, or this process's loop lagged while the request was in flight."""
        limit = float(planned.cell.config["workload"].get("max_client_lag_ms", 5.0))
        lag = self.monitor.max_since(sent_ns) if self.monitor is not None else 0.0
        return is_late(row.send_delay_ms, lag, limit)

    def _context(self, planned: PlannedRequest, runtime: CellRuntime, worker: int,
                 started_at: datetime, scheduled_ns: int) -> dict[str, Any]:
        """The row's context: what its cell fixes (built once per cell), then the request's."""
        fixed = self._fixed.get(planned.cell.name)
        if fixed is None:
            fixed = self._fixed[planned.cell.name] = self._cell_context(planned.cell, runtime)
        return {**fixed, "iteration": planned.iteration, "warmup": planned.warmup,
                "started_at": started_at, "worker": worker,
                "scheduled_ms": (scheduled_ns - self.t0_ns) / 1e6}

    def _cell_context(self, cell: Cell, runtime: CellRuntime) -> dict[str, Any]:
        cfg = cell.config
        return {
            "run_id": self.run_id, "cell": cell.name,
            "provider": cfg["provider"]["name"], "api": runtime.specs[0].api,
            "model": cfg["model"]["name"], "model_id": runtime.specs[0].model_id,
            "prompt": cfg["prompt"]["name"], "guardrail": cfg["guardrail"]["name"],
            "stream": runtime.specs[0].stream, "concurrency": int(cfg["workload"]["concurrency"]),
            "client": str(cfg["provider"].get("client", "httpx")),
            "client_version": client_version(str(cfg["provider"]["kind"]),
                                             str(cfg["provider"].get("client", "httpx"))),
            "transport": str(cfg["provider"].get("transport", "aiohttp")),
            "emulated": runtime.emulated,
        }


def provider_key(cfg: Mapping[str, Any]) -> str:
    """Cells whose provider config is equal share one provider (and one HTTP client)."""
    return json.dumps(cfg["provider"], sort_keys=True)


def build_runtimes(cells: list[Cell], endpoints: Mapping[str, Endpoint]) -> dict[str, CellRuntime]:
    """One runtime per cell; providers shared by provider config."""
    providers: dict[str, Provider] = {}
    runtimes: dict[str, CellRuntime] = {}
    for cell in cells:
        key = provider_key(cell.config)
        endpoint = endpoints[cell.name]
        if key + endpoint.base_url not in providers:
            build = kind_for(cell.config["provider"]["kind"]).build
            providers[key + endpoint.base_url] = build(cell.config["provider"], endpoint)
        prompts = load_prompts(cell.config["prompt"])
        specs = [request_spec(cell.config, model_id_for(cell.config), p) for p in prompts]
        prompts, specs, fields = shaped_requests(cell.config, prompts, specs)
        prices = prices_for(cell.config.get("pricing") or {}, cell.config["provider"]["name"],
                            cell.config["model"]["name"])
        runtimes[cell.name] = CellRuntime(cell, providers[key + endpoint.base_url], specs,
                                          prompts, endpoint.emulated, prices,
                                          build_batch(cell.config, prepare=True), fields)
    return runtimes


async def close_providers(runtimes: Mapping[str, CellRuntime]) -> None:
    seen: set[int] = set()
    for runtime in runtimes.values():
        if id(runtime.provider) not in seen:
            seen.add(id(runtime.provider))
            await runtime.provider.aclose()
