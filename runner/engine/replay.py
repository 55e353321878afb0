"""Replaying a recorded session (a trace with ``gap_s``, runner/engine/traffic.py): its calls in
order, each sent ``gap_s / workload.speed`` after the previous call ended, as the recorded
session's tools and think time spaced them. A call's due time is the previous end plus its gap,
so ``send_delay_ms`` stays the client's own delay. A failed call does not stop the session: the
recorded calls do not depend on the replayed answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from latlab.runner.core.protocol import RequestSpec
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import now_ns, sleep_until
from latlab.runner.engine.batch import BatchCell, BatchTimer
from latlab.runner.engine.plan import PlannedRequest
from latlab.runner.engine.traffic import captured_body

Send = Callable[[RequestSpec], Awaitable[Measurement]]


async def run_replayed_session(timer: BatchTimer, fields: list[dict[str, object]],
                               runtime: BatchCell, planned: PlannedRequest, worker: int,
                               scheduled_ns: int, send: Send) -> None:
    """Every call of the recorded session ``planned.calls``, one row each."""
    due = scheduled_ns
    for position, (index, gap_s) in enumerate(planned.calls or ()):
        if position:
            due = now_ns() + round(gap_s * 1e9)
            await sleep_until(due)
        spec = runtime.pick(index)[1]
        sent_ns, started_at = now_ns(), datetime.now(UTC)
        measurement = await send(spec)
        extra = {**fields[index], "request_body": captured_body(planned.cell.workload, spec)}
        timer.write_row(planned, worker, due, sent_ns, started_at, index, measurement,
                        fields=extra)
