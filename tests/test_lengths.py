"""Prompt-length distributions: input and output lengths drawn per iteration from
{mean, stddev, min, max}, seeded; the rows record the drawn lengths."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from in_process import latlab_here
from result_files import request_rows

from latlab.runner.config.lengths import LengthDistribution, drawn_lengths
from latlab.runner.core.errors import ConfigError


def test_draws_are_seeded_clipped_and_follow_the_distribution() -> None:
    dist = LengthDistribution.parse({"mean": 500, "stddev": 100, "min": 300, "max": 650}, "x")
    assert dist is not None
    draws = drawn_lengths(dist, 4000, seed=3, name="input")
    assert draws == drawn_lengths(dist, 4000, seed=3, name="input")
    assert draws != drawn_lengths(dist, 4000, seed=4, name="input")
    assert min(draws) == 300 and max(draws) == 650  # clipped at both ends
    assert statistics.mean(draws) == pytest.approx(500, abs=10)
    fixed = LengthDistribution.parse({"mean": 42}, "x")
    assert fixed is not None and set(drawn_lengths(fixed, 10, 0, "output")) == {42}


@pytest.mark.parametrize(("value", "named"), [
    ({"mean": 10, "min": 20, "max": 5}, "prompt.input_tokens: needs 1 <= min <= max"),
    ({"mean": 10, "sd": 3}, "prompt.input_tokens.sd: unknown key"),
    (12, "prompt.input_tokens: expected {mean, stddev, min, max}"),
])
def test_bad_distributions_name_the_key(value: object, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("{", r"\{").replace("}", r"\}")):
        LengthDistribution.parse(value, "prompt.input_tokens")


def test_rows_record_the_drawn_lengths_the_emulator_saw(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "prompt=synthetic_dist", "profile=fast", "workload.warmup=0",
                        "workload.iterations=12",
                        "workload.output_tokens={mean: 10, stddev: 5, min: 2, max: 20}"],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = sorted(request_rows(tmp_path / "results"), key=lambda r: r["iteration"])
    assert len({r["planned_input_tokens"] for r in rows}) > 6  # drawn, not one length
    assert all(100 <= r["planned_input_tokens"] <= 4000 for r in rows)
    assert all(r["input_tokens"] == r["planned_input_tokens"] for r in rows)
    # the emulator answers max_tokens tokens when it is below the profile's 20
    assert all(r["output_tokens"] == r["planned_output_tokens"] for r in rows)


def test_bad_distribution_exits_2_with_one_line_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "prompt=synthetic_dist", "prompt.input_tokens.min=5000"], capsys,
                       tmp_path)
    assert done.returncode == 2 and "prompt.input_tokens" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results" / "requests").exists()
