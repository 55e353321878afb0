"""Multi-turn conversations (workload=conversation): the context grows turn by turn, TTFT
with it at the emulator profile's prefill cost, and caching the growing prefix flattens it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from result_files import request_rows

from latlab.analysis.query import open_results
from latlab.runner.engine.conversation import with_marks

PREFILL = "++profile.prompt_cache={prefill_ms_per_1k_tokens:25,cached_ms_per_1k_tokens:0}"


def test_only_the_last_two_user_messages_carry_cache_control() -> None:
    messages = with_marks(["a", "b", "c"], ["x", "y"], cache=True)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2 + ["user"]
    marked = [m["content"][0].get("cache_control") is not None
              for m in messages if m["role"] == "user"]
    assert marked == [False, True, True]
    assert not any("cache_control" in str(m) for m in with_marks(["a", "b"], ["x"], False))


@pytest.mark.timing
def test_ttft_grows_with_the_context_at_the_profiles_prefill_cost(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "latlab", "run", "workload=conversation", "profile=fast",
         "prompt=synthetic_1k", "workload.turns=5", "workload.iterations=2", PREFILL,
         "++matrix.workload.cache_prefix=[true,false]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    assert len(rows) == 20 and {r["turn"] for r in rows} == set(range(5))
    plain = sorted((r for r in rows if "cache_prefix=false" in r["cell"]),
                   key=lambda r: (r["session_id"], r["turn"]))
    # each turn adds the previous answer (20 tokens in profile=fast) and 1,000 user tokens
    assert [r["context_tokens"] for r in plain[:5]] == [1000, 2020, 3040, 4060, 5080]
    growth = {r[0].rsplit("/", 2)[-2]: r[1:] for r in open_results(tmp_path / "results").sql(
        "SELECT cell, ttft_ms_per_1k_context, hit_rate FROM conversation_growth").fetchall()}
    slope, hit_rate = growth["cache_prefix=false"]
    assert slope == pytest.approx(25, abs=4) and hit_rate == 0  # the profile's 25 ms per 1k
    slope, hit_rate = growth["cache_prefix=true"]
    assert abs(slope) < 4 and hit_rate == 0.6  # turns 2-4 read what the turn before wrote
