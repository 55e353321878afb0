"""A batch and one run of it: the types every batch kind works with (engine/batches.py).

A batch is one planned iteration that makes several calls, one row each, linked by batch_id.
``BatchRun`` makes the calls through the cell's provider and, when the batch ends, hands one
row per call to the timer (engine/execute.py ``RequestTimer``, seen here as ``BatchTimer``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from latlab.runner.config.prompts import Prompt
from latlab.runner.core.protocol import Provider, RequestSpec
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import now_ns

if TYPE_CHECKING:
    from latlab.runner.engine.plan import PlannedRequest


class BatchCell(Protocol):
    """What a batch needs of its cell (engine/execute.py ``CellRuntime``)."""

    provider: Provider
    prompts: list[Prompt]

    def pick(self, iteration: int) -> tuple[int, RequestSpec]: ...


class BatchTimer(Protocol):
    """Where a batch's rows go (engine/execute.py ``RequestTimer``)."""

    run_id: str

    def write_row(self, planned: PlannedRequest, worker: int, scheduled_ns: int, sent_ns: int,
                  started_at: datetime, index: int, measurement: Measurement,
                  prices: Mapping[str, float] | None = None,
                  fields: Mapping[str, Any] | None = None) -> None: ...


@dataclass(frozen=True)
class Model:
    """A model a batch may call: its config name, wire id and prices."""

    name: str
    model_id: str
    prices: Mapping[str, float] = field(default_factory=dict)



@dataclass
class Call:
    """One call of a batch, measured, waiting to be written when the batch ends."""

    measurement: Measurement
    model: Model
    role: str
    sent_ns: int
    started_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


class BatchRun:
    """One batch being run: makes its calls, then writes one row per call."""

    def __init__(self, batch: Batch, timer: BatchTimer, planned: PlannedRequest,
                 runtime: BatchCell) -> None:
        self.batch, self.timer, self.planned, self.runtime = batch, timer, planned, runtime
        self.index, self.spec = runtime.pick(planned.iteration)
        self.calls: list[Call] = []
        self.start_ns = now_ns()

    @property
    def prompt_text(self) -> str:
        return self.runtime.prompts[self.index].text

    @property
    def label(self) -> str | None:
        return self.runtime.prompts[self.index].label

    def spec_for(self, model: Model, text: str | None = None, max_tokens: int | None = None,
                 timeout_s: float | None = None) -> RequestSpec:
        messages = self.spec.messages if text is None else [{"role": "user", "content": text}]
        return replace(self.spec, model_id=model.model_id, messages=messages,
                       max_tokens=max_tokens or self.spec.max_tokens,
                       timeout_s=timeout_s or self.spec.timeout_s)

    async def call(self, role: str, model: Model, spec: RequestSpec,
                   **extra: Any) -> Measurement:
        sent_ns, started_at = now_ns(), datetime.now(UTC)
        measurement = await self.runtime.provider.send(spec)
        self.calls.append(Call(measurement, model, role, sent_ns, started_at, extra))
        return measurement

    def record(self, call: Call) -> None:
        """A call that made no provider request (a client-side cache hit)."""
        self.calls.append(call)

    def finish(self, worker: int, scheduled_ns: int) -> None:
        wall_ms = (now_ns() - self.start_ns) / 1e6
        batch_id = f"{self.timer.run_id[-6:]}-{secrets.token_hex(4)}"
        for step, call in enumerate(self.calls):
            fields = {"batch_id": batch_id, "batch_kind": self.batch.kind,
                      "batch_mode": self.batch.mode, "batch_step": step, "batch_role": call.role,
                      "batch_wall_ms": wall_ms, "model": call.model.name,
                      "model_id": call.model.model_id, **call.extra}
            self.timer.write_row(self.planned, worker, scheduled_ns, call.sent_ns,
                                 call.started_at, self.index, call.measurement,
                                 call.model.prices, fields)


Runner = Callable[["Batch", BatchRun], Awaitable[None]]


@dataclass(frozen=True)
class Batch:
    """A cell's batch settings, checked and resolved before the first request."""

    kind: str
    mode: str
    options: Mapping[str, Any]
    models: Mapping[str, Model]
    cell_model: Model

    runner: Runner  # the kind's calls (engine/batches.py RUNNERS)
    state: dict[str, Any] = field(default_factory=dict)  # e.g. the client-side cache

    async def run(self, timer: BatchTimer, runtime: BatchCell, planned: PlannedRequest,
                  worker: int, scheduled_ns: int) -> None:
        run = BatchRun(self, timer, planned, runtime)
        await self.runner(self, run)
        run.finish(worker, scheduled_ns)
