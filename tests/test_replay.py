"""Trace replay (workload=replay): the trace formats, synthetic prompts with shared prefixes,
on-time sends at speed 1 and 4 measured on the rows, and cache hits where prefixes repeat."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from on_time import LATE_MS
from result_files import request_rows
from test_emulator import standalone_emulator

from latlab.runner.config.synthetic import prefix_and_tail, shared_blocks, token_count
from latlab.runner.config.traces import load_trace, parse_trace
from latlab.runner.core.errors import ConfigError


def latlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", "run", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write_trace(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def test_latlab_format_offsets_timestamps_and_messages() -> None:
    lines = [json.dumps({"timestamp": "2026-01-01T00:00:02Z", "input_tokens": 10}),
             json.dumps({"timestamp": "2026-01-01T00:00:00.5Z", "session_id": "s", "turn": 1,
                         "messages": [{"role": "user", "content": "hi"}], "output_tokens": 7})]
    first, second = parse_trace(lines, "auto", "t")
    assert first.offset_s == 0 and second.offset_s == pytest.approx(1.5)  # sorted by time
    assert first.messages is not None and first.output_tokens == 7 and first.turn == 1
    assert second.input_tokens == 10 and second.messages is None


def test_mooncake_format_is_detected_and_timestamps_are_ms() -> None:
    lines = [json.dumps({"timestamp": 1000, "input_length": 700, "output_length": 5,
                         "hash_ids": [1, 2]}),
             json.dumps({"timestamp": 1250, "input_length": 600, "output_length": 9,
                         "hash_ids": [1, 3]})]
    a, b = parse_trace(lines, "auto", "t")
    assert (a.offset_s, b.offset_s) == (0.0, 0.25)
    assert (a.input_tokens, a.output_tokens, a.hash_ids) == (700, 5, (1, 2))


@pytest.mark.parametrize(("workload", "message"), [
    ({"trace": "nowhere.jsonl"}, "workload.trace: nowhere.jsonl not found"),
    ({"trace": "BAD", "format": "weka"}, "workload.format: unknown trace format 'weka'"),
    ({"trace": "BAD"}, "line 2: not a latlab trace entry"),
])
def test_bad_traces_name_the_key_and_the_line(tmp_path: Path, workload: dict[str, Any],
                                              message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"offset_s": 0, "input_tokens": 5}\n{"offset_s": 1}\n', encoding="utf-8")
    workload = {k: str(bad) if v == "BAD" else v for k, v in workload.items()}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_trace(workload)


def test_cli_bad_trace_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    done = latlab("workload=replay", "workload.trace=missing.jsonl", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "workload.trace" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "requests").exists()


def test_synthetic_prompts_are_seeded_and_share_prefixes_by_hash_ids() -> None:
    ids = [(1, 2, 3), (1, 2, 4), (9,)]
    assert shared_blocks(ids) == [2, 2, 0]
    a = prefix_and_tail(0, 0, 1400, ids[0], 512, 2)
    b = prefix_and_tail(0, 1, 1300, ids[1], 512, 2)
    assert a[0] == b[0] and token_count(a[0]) == 1024 and a[1][:40] != b[1][:40]
    assert token_count(a[0] + a[1]) == 1400 and token_count(b[0] + b[1]) == 1300
    assert prefix_and_tail(0, 0, 1400, ids[0], 512, 2) == a  # deterministic
    assert prefix_and_tail(1, 0, 1400, ids[0], 512, 2)[0] != a[0]  # the seed changes it


def timing_trace(path: Path, count: int = 200, span_s: float = 12.0) -> list[float]:
    """200 requests over 12 s: 17 req/s at speed 1, 67 req/s at speed 4 (a client process
    spends ≈ 3 ms of CPU a request: a faster replay wants workload.workers on a shared box)."""
    rng = random.Random(7)
    offsets = sorted(rng.uniform(0, span_s) for _ in range(count))
    write_trace(path, [{"offset_s": t, "input_tokens": rng.randint(20, 200),
                        "output_tokens": 8} for t in offsets])
    return [t - offsets[0] for t in offsets]


@pytest.mark.timing
@pytest.mark.parametrize("speed", [1, 4])
def test_replay_sends_every_request_on_schedule(tmp_path: Path, speed: int) -> None:
    offsets = timing_trace(tmp_path / "t.jsonl")
    # a separate emulator process, so the server's work never delays the client's loop
    with standalone_emulator(["--profile", "fast"], watchdog_s=60) as (_, url):
        done = latlab("workload=replay", "workload.trace=t.jsonl", f"workload.speed={speed}",
                      "emulate=false", f"provider.base_url={url}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: r["prompt_index"])
    assert len(rows) == 200 and all(r["error_type"] is None for r in rows)
    start = rows[0]["scheduled_ms"]
    for row, offset in zip(rows, offsets, strict=True):
        assert row["scheduled_ms"] - start == pytest.approx(offset * 1000 / speed, abs=0.01)
    late = [r["send_delay_ms"] for r in rows if not -1 < r["send_delay_ms"] < LATE_MS]
    assert not late, f"{len(late)} of 200 sent off schedule: {sorted(late)[-5:]} ms"


def test_shared_hash_ids_hit_the_emulators_prompt_cache(tmp_path: Path) -> None:
    # a 1,536-token shared prefix (3 blocks, above the 1,024-token minimum), then own blocks;
    # requests 0.2 s apart, so each finds the first one's prefix written
    items = [{"timestamp": 200 * i, "input_length": 2000, "output_length": 4,
              "hash_ids": [1, 2, 3, 100 + i]} for i in range(5)]
    items.append({"timestamp": 1000, "input_length": 2000, "output_length": 4,
                  "hash_ids": [7, 8, 9, 10]})  # shares nothing: never cached
    write_trace(tmp_path / "m.jsonl", items)
    done = latlab("workload=replay", "workload.trace=m.jsonl", "profile=fast", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: r["prompt_index"])
    assert [r["cache_read_tokens"] for r in rows] == [0, 1536, 1536, 1536, 1536, 0]
    assert [r["cache_write_tokens"] for r in rows] == [1536, 0, 0, 0, 0, 0]
    assert all(r["planned_input_tokens"] == 2000 for r in rows)
    assert rows[1]["input_tokens"] + rows[1]["cache_read_tokens"] == 2000


def test_replayed_requests_are_dealt_to_workers_in_trace_order() -> None:
    from latlab.runner.engine.plan import Cell, PlannedRequest
    from latlab.runner.engine.schedule import split_plan

    workload = {"warmup": 0, "iterations": 1, "concurrency": 1, "stream": True}
    cfg = {"provider": {"name": "p"}, "model": {"name": "m"}, "prompt": {"name": "x"},
           "guardrail": {"name": "none"}, "workload": workload}
    a, b = Cell("a", cfg), Cell("b", cfg)
    plan = [PlannedRequest(cell, i, False, offset) for cell in (a, b)
            for i, offset in enumerate([0, 300, 100])]
    (shares,) = split_plan(plan, workers=2)
    dealt = sorted((o, plan[i].cell.name, plan[i].iteration)
                   for s in shares for i, o in zip(s.requests, s.offsets_ns or [], strict=True))
    assert dealt == [(0, "a", 0), (0, "b", 0), (100, "a", 2), (100, "b", 2),
                     (300, "a", 1), (300, "b", 1)]
    assert [len(s.requests) for s in shares] == [3, 3]
