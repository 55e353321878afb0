"""Prompt kinds: fixed, synthetic of an exact token length, and JSONL sets; and cost."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from in_process import latlab_here

from latlab.providers.emulator.anthropic_wire import estimate_input_tokens
from latlab.runner.config.prompts import load_prompts, read_prompt_set, synthetic_text
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.records import Measurement
from latlab.runner.engine.cost import cost_usd, prices_for


@pytest.mark.parametrize("tokens", [1, 37, 1000, 4096])
def test_synthetic_prompt_has_the_exact_emulator_token_count(tokens: int) -> None:
    body = {"messages": [{"role": "user", "content": synthetic_text(tokens)}]}
    assert estimate_input_tokens(body) == tokens


def test_prompt_set_cycles_and_keeps_labels() -> None:
    prompts = load_prompts({"name": "routing_set", "path": "routing_set.jsonl"})
    assert len(prompts) == 10 and {p.label for p in prompts} == {"small", "large"}


def test_bad_prompt_file_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        read_prompt_set(str(bad))
    with pytest.raises(ConfigError, match="prompt.path"):
        read_prompt_set(str(tmp_path / "missing.jsonl"))


def test_cost_uses_provider_prices_before_list_prices() -> None:
    pricing = {"models": {"m": {"input": 1.0, "output": 5.0, "cache_write": 1.25,
                                "cache_read": 0.1}},
               "providers": {"bedrock": {"m": {"input": 2.0, "output": 10.0}}}}
    m = Measurement(input_tokens=1000, output_tokens=200, cache_read_tokens=10_000,
                    cache_write_tokens=0)
    assert cost_usd(m, prices_for(pricing, "anthropic", "m")) == pytest.approx(
        (1000 * 1.0 + 200 * 5.0 + 10_000 * 0.1) / 1e6)
    assert cost_usd(m, prices_for(pricing, "bedrock", "m")) == pytest.approx(
        (1000 * 2.0 + 200 * 10.0) / 1e6)
    assert cost_usd(Measurement(), prices_for(pricing, "anthropic", "m")) is None


def test_run_with_a_prompt_set_records_index_label_and_cost(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "prompt=routing_set", "profile=fast", "workload.warmup=0",
                        "workload.iterations=12"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [r for f in (tmp_path / "results" / "requests").glob("*/*.parquet")
            for r in pq.read_table(f).to_pylist()]
    by_iteration = {r["iteration"]: r for r in rows}
    assert by_iteration[11]["prompt_index"] == 1 and by_iteration[5]["prompt_label"] == "large"
    assert all(r["cost_usd"] and r["cost_usd"] > 0 for r in rows)
