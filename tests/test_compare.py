"""analysis/bootstrap.py, the `comparison` view and ``latlab compare``.

Runs (cell CELL, 40 successful requests each unless noted; TTFT in ms):
    base01  ttft 100 … 139           output_tps 50 … 89
    slow02  ttft 300 … 339 (+200)    output_tps 100 … 139 (+50: faster)
    same03  ttft 100 … 139 in another order (identical distribution)
    tiny04  3 requests, ttft 500 501 502
    mixed5  one run, cells anthropic/… (ttft 100 … 139) and bedrock/… (ttft 800 … 839)
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from analysis.bootstrap import (
    Interval,
    bootstrap_medians,
    median_difference_ci,
    median_positions,
    needed_per_cell,
    percentile,
)
from analysis.compare import CompareOptions, compare_command, verdict
from analysis.query import open_results
from runner.errors import ConfigError
from tests.test_analysis import T0, ok, write_requests, write_run

CELL = "emulator/haiku-4-5/short/none/stream"
DIRECT = "anthropic/haiku-4-5/short/none/stream"
BEDROCK = "bedrock/haiku-4-5/short/none/stream"


def rows(run: str, cell: str, ttfts: list[float], tps: list[float]) -> list[dict[str, Any]]:
    provider = cell.split("/")[0]
    return [ok(run, cell, t, t + 500, 20, s, [10.0], iteration=i, provider=provider)
            for i, (t, s) in enumerate(zip(ttfts, tps, strict=True))]


def make_compare_results(root: Path) -> Path:
    r = root / "results"
    base = [100.0 + i for i in range(40)]
    runs = {
        "base01": rows("base01", CELL, base, [50.0 + i for i in range(40)]),
        "slow02": rows("slow02", CELL, [t + 200 for t in base], [100.0 + i for i in range(40)]),
        "same03": rows("same03", CELL, [100.0 + (7 * i) % 40 for i in range(40)],
                       [50.0 + (3 * i) % 40 for i in range(40)]),
        "tiny04": rows("tiny04", CELL, [500.0, 501.0, 502.0], [60.0, 60.0, 60.0]),
        "mixed5": rows("mixed5", DIRECT, base, [50.0] * 40)
        + rows("mixed5", BEDROCK, [t + 700 for t in base], [50.0] * 40),
    }
    for day, (run, data) in enumerate(runs.items()):
        write_requests(r, run, "0000", data)
        write_run(r, run, T0 + timedelta(days=day))
    return r


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    return make_compare_results(tmp_path)


def by_metric(out: str) -> dict[str, dict[str, Any]]:
    return {r["metric"]: r for r in json.loads(out)}


# ---------------------------------------------------------------- bootstrap


@pytest.mark.parametrize(("n", "reps", "tolerance"), [(7, 40000, 0.01), (49, 40000, 0.012),
                                                     (201, 20000, 0.015)])
def test_resample_median_has_the_exact_bootstrap_law(n: int, reps: int, tolerance: float
                                                    ) -> None:
    """Odd n: P(resample median <= x_(j)) = P(Binomial(n, j/n) >= m), m = (n+1)/2; n = 7 is
    drawn exactly, n = 49 and 201 through the normal approximation."""
    counts = [0] * n
    for k, _ in median_positions(n, random.Random(1), reps):
        counts[k] += 1
    m = (n + 1) // 2
    cdf = 0.0
    for j in range(1, n + 1):
        cdf += counts[j - 1] / reps
        p = j / n
        exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(m, n + 1))
        assert cdf == pytest.approx(exact, abs=tolerance)


@pytest.mark.parametrize(("sample", "reps", "tolerance"), [
    ([3.0, 9.0, 1.0, 7.0, 4.0, 12.0], 30000, 0.6),  # exact draws
    ([float((i * 37) % 101) for i in range(60)], 10000, 1.5),  # normal approximation
])
def test_even_n_medians_match_brute_force_resampling(sample: list[float], reps: int,
                                                     tolerance: float) -> None:
    sample = sorted(sample)
    rng = random.Random(2)
    fast = bootstrap_medians(len(sample), lambda ks: {k: sample[k] for k in ks}, rng, reps)
    half = len(sample) // 2
    brute = []
    for _ in range(reps):
        s = sorted(rng.choice(sample) for _ in sample)
        brute.append((s[half - 1] + s[half]) / 2)
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert percentile(sorted(fast), q) == pytest.approx(percentile(sorted(brute), q),
                                                            abs=tolerance)
    assert sum(fast) / len(fast) == pytest.approx(sum(brute) / len(brute), abs=tolerance / 4)


def test_interval_needed_and_verdict_rules() -> None:
    # differences 5, 4, 3 -> sorted 3 4 5: 2.5% at h = 0.05, 97.5% at h = 1.95
    ci = median_difference_ci([0.0, 1.0, 2.0], [5.0, 5.0, 5.0])
    assert (ci.low, ci.high) == (pytest.approx(3.05), pytest.approx(4.95))
    assert needed_per_cell(10, 10, Interval(-20, 20), 10) == 40
    assert needed_per_cell(10, 10, Interval(-5, 5), 10) is None
    assert verdict("ttft_ms", Interval(5, 9), 20, 20) == "slower"
    assert verdict("output_tps", Interval(5, 9), 20, 20) == "faster"
    assert verdict("ttft_ms", Interval(-1, 9), 20, 20) == "within noise"
    assert verdict("ttft_ms", Interval(5, 9), 3, 20) == "too few requests (< 10)"


# ---------------------------------------------------------------- view


def test_comparison_view_baseline_delta_ratio(results: Path) -> None:
    con = open_results(results, ["base01", "slow02"])
    rows_ = con.execute("SELECT baseline_run, run_id, n_baseline, n, baseline_p50, p50, "
                        "delta_p50, ratio_p50, delta_mean FROM comparison "
                        "WHERE kind = 'run' AND metric = 'ttft_ms'").fetchall()
    assert rows_ == [("base01", "slow02", 40, 40, 119.5, 319.5, 200.0, 319.5 / 119.5, 200.0)]
    con.execute("SET VARIABLE latlab_baseline_run = 'slow02'")
    assert con.execute("SELECT baseline_run, delta_p50 FROM comparison WHERE kind = 'run' "
                       "AND metric = 'ttft_ms'").fetchall() == [("slow02", -200.0)]


# ---------------------------------------------------------------- command


def test_clearly_different_pair_is_slower_and_faster(results: Path) -> None:
    out = by_metric(compare_command(results, ["base01", "slow02"], "json"))
    ttft = out["ttft_ms"]
    assert (ttft["baseline"], ttft["other"], ttft["cell"]) == ("base01", "slow02", CELL)
    assert ttft["delta_p50"] == 200.0 and ttft["verdict"] == "slower"
    assert 190 <= ttft["ci95_low"] <= 200 <= ttft["ci95_high"] <= 210
    assert ttft["needed_per_cell"] is None
    assert out["output_tps"]["verdict"] == "faster"  # more tokens/s is better
    assert set(out) == {"ttft_ms", "total_ms", "output_tps"}


def test_clearly_equal_pair_is_within_noise(results: Path) -> None:
    out = by_metric(compare_command(results, ["base01", "same03"], "json",
                                    opts=CompareOptions(detect=0.01)))
    ttft = out["ttft_ms"]
    assert ttft["delta_p50"] == 0.0 and ttft["verdict"] == "within noise"
    assert ttft["ci95_low"] < 0 < ttft["ci95_high"]
    # a 1% (1.2 ms) difference needs a narrower interval: more requests per cell
    assert ttft["needed_per_cell"] > 40
    assert compare_command(results, ["base01", "same03"], "json") == compare_command(
        results, ["base01", "same03"], "json")  # seeded: reproducible


def test_small_sample_is_not_judged(results: Path) -> None:
    out = by_metric(compare_command(results, ["base01", "tiny04"], "json"))
    assert out["ttft_ms"]["verdict"] == "too few requests (< 10)"
    assert out["ttft_ms"]["n"] == 3


def test_latest_and_by_axis(results: Path) -> None:
    out = list(csv.DictReader(io.StringIO(
        compare_command(results, [], "csv", by="provider", opts=CompareOptions(["ttft_ms"])))))
    assert len(out) == 1
    row = out[0]
    assert (row["cell"], row["baseline"], row["other"]) == (
        "*/haiku-4-5/short/none/stream", "anthropic", "bedrock")
    assert (float(row["delta_p50"]), row["verdict"]) == (700.0, "slower")
    latest = json.loads(compare_command(results, [], "json", latest=3))
    assert {(r["baseline"], r["other"]) for r in latest} == {("same03", "tiny04")}
    assert "ttft_ms" in compare_command(results, ["base", "slow"], "table")


def test_bad_input_and_nothing_to_compare(results: Path) -> None:
    with pytest.raises(ConfigError, match="compare needs at least 2 runs"):
        compare_command(results, ["base01"], "table")
    with pytest.raises(ConfigError, match="--metric: unknown metric 'ttx'"):
        compare_command(results, [], "table", opts=CompareOptions(["ttx"]))
    with pytest.raises(ConfigError, match="--latest: give run ids or --latest N, not both"):
        compare_command(results, ["base01"], "table", latest=2)
    with pytest.raises(ConfigError, match="--by: unknown axis"):
        compare_command(results, [], "table", by="not an axis")
    out = compare_command(results, ["base01", "mixed5"], "table")
    assert out == "nothing to compare: no cell appears in more than one of the selected runs"
    out = compare_command(results, ["base01"], "table", by="guardrail")
    assert out.startswith("nothing to compare: no two cells of a run differ only in 'guardrail'")
