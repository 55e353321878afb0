"""Multi-turn conversations (``workload=conversation``): one planned iteration is one
conversation of ``workload.turns`` calls, the context growing as in a chat or agent loop.

Turn 0 sends the cell's prompt. Each later turn appends the previous answer (its text when the
provider returned it, else a synthetic text of its ``output_tokens``, built from the seed) and a
new synthetic user message of ``workload.user_tokens`` tokens, after ``workload.think_s``.
With ``workload.cache_prefix: true`` the last two user messages carry ``cache_control``: the
older breakpoint reads what the previous turn wrote, the newer writes the grown prefix.

Each turn is a row: ``session_id`` (the conversation), ``turn`` (0-based) and
``context_tokens``; its due time is the previous answer's end plus the think time, so
``send_delay_ms`` stays the client's own delay. A failed turn ends its conversation.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from latlab.runner.config.synthetic import seeded_text, token_count
from latlab.runner.core.protocol import RequestSpec
from latlab.runner.core.records import Measurement
from latlab.runner.core.timing import now_ns
from latlab.runner.engine.batch import BatchCell, BatchTimer
from latlab.runner.engine.plan import PlannedRequest
from latlab.runner.engine.traffic import captured_body

Send = Callable[[RequestSpec], Awaitable[Measurement]]
CACHE_MARK = {"type": "ephemeral"}
MARKED_TURNS = 2  # breakpoints on the last two user messages (the API allows four)


def is_conversation(workload: Mapping[str, Any]) -> bool:
    return str(workload.get("kind", "requests")) == "conversation"


def user_message(text: str, mark: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if mark:
        block["cache_control"] = dict(CACHE_MARK)
    return {"role": "user", "content": [block]}


def with_marks(texts: list[str], answers: list[str], cache: bool) -> list[dict[str, Any]]:
    """user 0, answer 0, user 1, …, the newest user message last."""
    messages: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        messages.append(user_message(text, cache and i >= len(texts) - MARKED_TURNS))
        if i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    return messages


def answer_text(measurement: Measurement, key: str) -> str:
    """What the model said, or a stand-in of the same length."""
    if measurement.text:
        return measurement.text
    return seeded_text(max(measurement.output_tokens or 1, 1), key)


def context_tokens(measurement: Measurement, messages: list[dict[str, Any]]) -> int:
    """The whole prompt's tokens: from the usage, else counted as the emulator counts."""
    if measurement.input_tokens is not None:
        return (measurement.input_tokens + (measurement.cache_read_tokens or 0)
                + (measurement.cache_write_tokens or 0))
    return sum(token_count(str(m["content"])) for m in messages)


async def run_conversation(timer: BatchTimer, runtime: BatchCell, planned: PlannedRequest,
                           worker: int, scheduled_ns: int, send: Send) -> None:
    """Every turn of one conversation, one row each."""
    workload = planned.cell.workload
    index, spec = runtime.pick(planned.iteration)
    conversation = f"{timer.run_id[-6:]}-{secrets.token_hex(4)}"
    seed, think_ns = int(workload.get("seed", 0)), round(float(workload.get("think_s", 0)) * 1e9)
    texts, due = [runtime.prompts[index].text], scheduled_ns
    answers: list[str] = []
    for turn in range(int(workload.get("turns", 1))):
        messages = with_marks(texts, answers, bool(workload.get("cache_prefix")))
        sent_ns, started_at = now_ns(), datetime.now(UTC)
        measurement = await send(replace(spec, messages=messages))
        fields = {"session_id": conversation, "turn": turn,
                  "context_tokens": context_tokens(measurement, messages),
                  "request_body": captured_body(workload, replace(spec, messages=messages))}
        timer.write_row(planned, worker, due, sent_ns, started_at, index, measurement,
                        fields=fields)
        if not measurement.ok:
            return
        key = f"{seed}:{planned.iteration}:{turn}"
        answers.append(answer_text(measurement, f"answer:{key}"))
        texts.append(seeded_text(int(workload.get("user_tokens", 200)), f"user:{key}"))
        due = now_ns() + think_ns
        await asyncio.sleep(think_ns / 1e9)
