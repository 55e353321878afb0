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

from latlab.analysis.bootstrap import (
    Interval,
    bootstrap_medians,
    median_difference_ci,
    median_positions,
    needed_per_cell,
    percentile,
)
from latlab.analysis.compare import CompareOptions, compare_command, verdict
from latlab.analysis.query import open_results
from latlab.runner.core.errors import ConfigError
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


def test_compare_table_fits_100_columns_and_wide_has_every_column(results: Path) -> None:
    table = compare_command(results, ["base01", "slow02"], "table")
    lines = table.splitlines()
    assert lines[0] == f"cell {CELL} (every column: --wide)"  # shared by every row: once
    assert lines[1].split() == ["compared", "metric", "n", "p50", "delta", "[95%", "CI]",
                                "verdict"]
    ttft = next(line for line in lines if "ttft_ms" in line)
    assert ttft.split()[:7] == ["base01", "->", "slow02", "ttft_ms", "40/40", "120", "->"]
    assert ttft.rstrip().endswith("slower") and "+200 [" in ttft
    assert max(len(line) for line in lines) <= 100
    wide = compare_command(results, ["base01", "slow02"], "table", wide=True)
    assert "needed_per_cell" in wide and "ratio_p50" in wide
    assert "needed_per_cell" in compare_command(results, ["base01", "slow02"], "csv")


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


# ---------------------------------------------------------------- the SQL bootstrap


def sql_positions(results: Path, sizes: list[int], reps: int, seed: int = 0
                  ) -> list[list[tuple[int, int]]]:
    """bootstrap_positions (analysis/55_bootstrap.sql) for groups of the given sizes: per
    group, the 0-based positions (k1, k2) of replicates 0 … reps − 1."""
    con = open_results(results, ["base01"], needs=("bootstrap_positions",))
    con.execute("SET VARIABLE latlab_bootstrap_seed = ?", [seed])
    con.execute("SET VARIABLE latlab_bootstrap_replicates = ?", [reps])
    for g, n in enumerate(sizes):
        con.execute("INSERT INTO bootstrap_groups VALUES (?, 'r', 'c', ?, ?, 0, [])",
                    [g, f"m{g}", n])
    rows = con.execute("SELECT g, k1s, k2s FROM bootstrap_positions ORDER BY g").fetchall()
    assert [g for g, _, _ in rows] == list(range(len(sizes)))
    return [[(k1 - 1, k2 - 1) for k1, k2 in zip(k1s, k2s, strict=True)] for _, k1s, k2s in rows]


@pytest.mark.parametrize(("n", "reps", "tolerance"), [(7, 40000, 0.01), (49, 40000, 0.012),
                                                     (201, 20000, 0.015)])
def test_sql_positions_have_the_exact_bootstrap_law(results: Path, n: int, reps: int,
                                                    tolerance: float) -> None:
    """The SQL draws follow the law the Python reference is tested against above: n = 7
    from sorted hashed uniforms, n = 49 and 201 through the normal approximation."""
    (pairs,) = sql_positions(results, [n], reps)
    assert all(k1 == k2 for k1, k2 in pairs)  # odd n: one position
    counts = [0] * n
    for k, _ in pairs:
        counts[k] += 1
    m, cdf = (n + 1) // 2, 0.0
    for j in range(1, n + 1):
        cdf += counts[j - 1] / reps
        exact = sum(math.comb(n, i) * (j / n) ** i * (1 - j / n) ** (n - i)
                    for i in range(m, n + 1))
        assert cdf == pytest.approx(exact, abs=tolerance)


@pytest.mark.parametrize(("sample", "reps", "tolerance"), [
    ([3.0, 9.0, 1.0, 7.0, 4.0, 12.0], 30000, 0.6),  # exact draws
    ([float((i * 37) % 101) for i in range(60)], 10000, 1.5),  # normal approximation
])
def test_sql_even_n_medians_match_brute_force_resampling(
        results: Path, sample: list[float], reps: int, tolerance: float) -> None:
    sample = sorted(sample)
    (pairs,) = sql_positions(results, [len(sample)], reps, seed=3)
    assert all(k1 <= k2 for k1, k2 in pairs)
    fast = sorted((sample[a] + sample[b]) / 2 for a, b in pairs)
    rng, half, brute = random.Random(2), len(sample) // 2, []
    for _ in range(reps):
        s = sorted(rng.choice(sample) for _ in sample)
        brute.append((s[half - 1] + s[half]) / 2)
    brute.sort()
    for q in (0.05, 0.25, 0.5, 0.75, 0.95):
        assert percentile(fast, q) == pytest.approx(percentile(brute, q), abs=tolerance)


def test_sql_groups_draw_independently_and_reproducibly(results: Path) -> None:
    """Two groups of one size get uncorrelated draws (their replicates are paired in a
    difference); the same seed gives the same draws, another seed others."""
    a, b = sql_positions(results, [201, 201], 20000)
    xa, xb = [k for k, _ in a], [k for k, _ in b]
    mean_a, mean_b = sum(xa) / len(xa), sum(xb) / len(xb)
    cov = sum((p - mean_a) * (q - mean_b) for p, q in zip(xa, xb, strict=True))
    var_a = sum((p - mean_a) ** 2 for p in xa)
    var_b = sum((q - mean_b) ** 2 for q in xb)
    assert abs(cov / math.sqrt(var_a * var_b)) < 0.03
    assert sql_positions(results, [201], 50) == sql_positions(results, [201], 50)
    assert sql_positions(results, [201], 50) != sql_positions(results, [201], 50, seed=1)


def big_runs(root: Path) -> Path:
    """Two runs of 1201 TTFTs each (n > 1000: summaries keep a band), the second + 5 ms."""
    r = root / "results"
    for day, (run, shift) in enumerate((("big01", 0.0), ("big02", 5.0))):
        ttfts = [100.0 + shift + (i * 7919) % 1201 / 10 for i in range(1201)]
        write_requests(r, run, "0000", rows(run, CELL, ttfts, [50.0] * 1201))
        write_run(r, run, T0 + timedelta(days=day))
    return r


def test_group_is_read_whole_when_a_position_falls_outside_its_band(tmp_path: Path) -> None:
    """Groups above 1000 values keep only a band around the median in their summary; a band
    that misses a drawn position (here: cut to 11 values) is replaced by the whole group,
    which gives the same interval the full band does."""
    from latlab.analysis.compare import CompareOptions, bootstrap_pairs, intervals, read_summaries

    con = open_results(big_runs(tmp_path), needs=("comparison", "bootstrap_intervals",
                                                  "metric_samples", "metric_summaries_of"))
    con.execute("SET VARIABLE latlab_baseline_run = 'big01'")
    read_summaries(con)
    con.execute("CREATE TEMP TABLE compared AS SELECT 1 AS pair, * FROM comparison_of("
                "'compare_stats') WHERE kind = 'run' AND metric = 'ttft_ms'")
    opts = CompareOptions()
    banded = bootstrap_pairs(con, opts)[1]
    assert 0 < banded.low < 5 < banded.high < 10  # a shift of 5, medians ± 1.7
    (below, size) = con.execute("SELECT below, len(band) FROM bootstrap_groups LIMIT 1"
                                ).fetchone() or (0, 0)
    assert below > 0 and size < 1201  # a band, not the whole group
    con.execute("UPDATE compare_summaries SET below = below + 100, band = band[101:111]")
    assert bootstrap_pairs(con, opts)[1] == banded  # read whole after a miss
    assert con.execute("SELECT min(below), min(len(band)) FROM bootstrap_groups"
                       ).fetchone() == (0, 1201)
    con.execute("UPDATE bootstrap_groups SET below = below + 100, band = band[101:111]")
    assert intervals(con, opts)[1][1] is False  # the miss
