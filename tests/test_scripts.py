"""The emulator's scripted agent turns, through the official anthropic SDK: the reply follows
the message history and the request's tool list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from latlab.providers.emulator import EmulatorProfile, start_emulator
from latlab.providers.emulator.scripts import scripted_reply

PROMPT = "Do it.\n\n[latlab-task: simple] [latlab-workdir: /tmp/w]"


def tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": name, "input_schema": {"type": "object"}}


@pytest.fixture(scope="module")
def client() -> Iterator[anthropic.Anthropic]:
    with start_emulator(EmulatorProfile.fixed(1, 2, 0.5, 5)) as running:
        with anthropic.Anthropic(base_url=running.base_url, api_key="dummy") as sdk:
            yield sdk


def history(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]
    for i in range(turns):
        use = {"type": "tool_use", "id": f"toolu_{i}", "name": "Bash", "input": {}}
        messages.append({"role": "assistant", "content": [use]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "ok"}]})
    return messages


@pytest.mark.parametrize("stream", [True, False])
def test_each_turn_follows_the_script_then_ends(client: anthropic.Anthropic,
                                                stream: bool) -> None:
    tools = [tool(n) for n in ("Bash", "Read", "Write", "Edit")]
    replies = []
    for turns in range(3):
        kwargs: dict[str, Any] = {"model": "any-model-name-at-all", "max_tokens": 1024,
                                  "messages": history(turns), "tools": tools}
        if stream:
            with client.messages.stream(**kwargs) as events:
                replies.append(events.get_final_message())
        else:
            replies.append(client.messages.create(**kwargs))
    first, second, last = replies
    assert first.stop_reason == "tool_use" and second.stop_reason == "tool_use"
    (write,) = [b for b in first.content if b.type == "tool_use"]
    assert write.name == "Write" and write.input["file_path"] == "/tmp/w/calc.py"
    (bash,) = [b for b in second.content if b.type == "tool_use"]
    assert bash.name == "Bash" and "calc.add(2, 3)" in bash.input["command"]
    assert last.stop_reason == "end_turn" and "verified" in last.content[0].text
    assert last.usage.output_tokens > 0


def test_tool_names_come_from_the_request_and_missing_tools_are_skipped() -> None:
    body = {"messages": history(0), "tools": [tool("bash")]}  # no write tool offered
    reply = scripted_reply(body)
    assert reply is not None and reply.stop_reason == "tool_use"
    assert [b["name"] for b in reply.content if b["type"] == "tool_use"] == ["bash"]
    body = {"messages": history(1), "tools": [tool("bash")]}
    assert scripted_reply(body) is not None and scripted_reply(body).stop_reason == "end_turn"


def test_requests_without_the_marker_or_tools_are_not_scripted() -> None:
    assert scripted_reply({"messages": [{"role": "user", "content": "hi"}],
                           "tools": [tool("Bash")]}) is None
    assert scripted_reply({"messages": history(0)}) is None
    unknown = [{"role": "user", "content": "[latlab-task: no-such-task]"}]
    assert scripted_reply({"messages": unknown, "tools": [tool("Bash")]}) is None
