"""analysis/summaries.py and analysis/52_summaries.sql: the per-run summaries compare keeps.

Runs: tests/test_compare.py's (40 requests per cell), and two of 1201 requests (n > 1000:
their summaries keep a band of sorted values, not the whole group).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from latlab.analysis import summaries
from latlab.analysis.compare import compare_command
from latlab.analysis.query import open_results
from latlab.analysis.summaries import (
    PRECOMPUTE_ROWS,
    TABLE,
    load_summaries,
    summarize_run,
)
from latlab.runner.app.run import keep_summary
from latlab.runner.core.records import RunRecord
from latlab.runner.results.layout import summaries_folder
from tests.test_analysis import write_requests
from tests.test_compare import CELL, big_runs, make_compare_results, rows


def kept(results: Path, run_id: str) -> list[Path]:
    return sorted(summaries_folder(results, run_id).glob("*.parquet"))


def summary_rows(results: Path, run_ids: list[str] | None = None
                 ) -> dict[tuple[str, str], tuple[int, float, int, list[float]]]:
    """(run, metric) -> (n, p50, below, band) of CELL, through load_summaries."""
    con = open_results(results, run_ids, needs=("metric_summaries_of",))
    load_summaries(con)
    found = con.execute(f"SELECT run_id, metric, n, p50, below, band FROM {TABLE} "
                        "WHERE cell = ?", [CELL]).fetchall()
    con.close()
    return {(run, metric): (n, p50, below, band) for run, metric, n, p50, below, band in found}


def test_compare_keeps_one_summary_per_run_and_reads_it_back(tmp_path: Path) -> None:
    results = make_compare_results(tmp_path)
    first = compare_command(results, ["base01", "slow02"], "json")
    assert [len(kept(results, run)) for run in ("base01", "slow02", "same03")] == [1, 1, 0]
    # the kept file is what the next compare reads: doctor it and the medians follow
    path = kept(results, "slow02")[0]
    con = open_results(results, needs=())
    con.execute(f"COPY (SELECT * REPLACE (p50 + 1000 AS p50) FROM read_parquet('{path}')) "
                f"TO '{path}' (FORMAT parquet)")
    con.close()
    again = {r["metric"]: r for r in json.loads(compare_command(results, ["base01", "slow02"],
                                                                "json"))}
    before = {r["metric"]: r for r in json.loads(first)}
    assert again["ttft_ms"]["p50"] == before["ttft_ms"]["p50"] + 1000
    assert again["ttft_ms"]["ci95_low"] == before["ttft_ms"]["ci95_low"]  # bands unchanged


def test_kept_summaries_give_the_same_comparison_as_the_rows(tmp_path: Path) -> None:
    results = big_runs(tmp_path)
    cold = compare_command(results, ["big01", "big02"], "csv")
    assert kept(results, "big01") and kept(results, "big02")
    assert compare_command(results, ["big01", "big02"], "csv") == cold


def test_band_holds_the_sorted_values_around_the_median(tmp_path: Path) -> None:
    """n = 1201: the band is exactly the sorted values at positions (n + 1) // 2 − reach …
    (n + 1) // 2 + 1 + reach, reach = ceil(3·√n) + 32; small groups are kept whole."""
    results = big_runs(tmp_path)
    n, p50, below, band = summary_rows(results)[("big01", "ttft_ms")]
    values = sorted(100.0 + (i * 7919) % 1201 / 10 for i in range(1201))
    reach = math.ceil(3 * math.sqrt(n)) + 32
    assert n == 1201 and p50 == values[600]
    assert below == 601 - reach - 1 and band == values[below:601 + 1 + reach]
    small = summary_rows(make_compare_results(tmp_path / "small"))
    n, _, below, band = small[("base01", "ttft_ms")]
    assert n == 40 and below == 0 and band == [100.0 + i for i in range(40)]


def test_a_resumed_run_is_summarized_again(tmp_path: Path) -> None:
    """New request files change the fingerprint: the summary is computed again with the new
    rows, and the old file is removed."""
    results = make_compare_results(tmp_path)
    assert summary_rows(results, ["base01"])[("base01", "ttft_ms")][0] == 40
    (old,) = kept(results, "base01")
    write_requests(results, "base01", "0001", rows("base01", CELL, [900.0] * 5, [1.0] * 5))
    assert summary_rows(results, ["base01"])[("base01", "ttft_ms")][0] == 45
    (new,) = kept(results, "base01")
    assert new != old and not old.exists()


def test_rows_of_a_renamed_run_folder_are_summarized(tmp_path: Path) -> None:
    """Summaries are computed for every run not kept, by the rows' run_id: rows under a
    folder renamed by hand (run_id "base01" under requests/moved07/) still count."""
    results = make_compare_results(tmp_path)
    summary_rows(results, ["slow02"])  # slow02 kept
    (results / "requests" / "base01").rename(results / "requests" / "moved07")
    (results / "runs" / "base01.parquet").rename(results / "runs" / "moved07.parquet")
    found = summary_rows(results, ["slow02", "moved07"])
    assert found[("base01", "ttft_ms")][0] == 40 and found[("slow02", "ttft_ms")][0] == 40


def test_a_changed_definition_makes_kept_summaries_stale(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    results = make_compare_results(tmp_path)
    summary_rows(results, ["base01"])
    (old,) = kept(results, "base01")
    monkeypatch.setattr(summaries, "definition", lambda: b"-- another SQL")
    summary_rows(results, ["base01"])
    (new,) = kept(results, "base01")
    assert new != old


def test_unreadable_or_unwritable_summaries_are_computed_from_the_rows(tmp_path: Path) -> None:
    results = make_compare_results(tmp_path)
    expected = summary_rows(results, ["base01"])
    kept(results, "base01")[0].write_bytes(b"not parquet")
    assert summary_rows(results, ["base01"]) == expected  # recomputed, and kept again
    assert kept(results, "base01")[0].read_bytes()[:4] == b"PAR1"
    other = make_compare_results(tmp_path / "read-only")
    (other / "summaries").write_text("a file where the folder would go")
    assert summary_rows(other, ["base01"]) == expected  # nothing could be kept: no error
    assert (other / "summaries").is_file()


@pytest.mark.parametrize(("requests", "keeps"), [(PRECOMPUTE_ROWS, True),
                                                 (PRECOMPUTE_ROWS - 1, False)])
def test_run_keeps_the_summary_of_large_runs(tmp_path: Path, requests: int,
                                             keeps: bool) -> None:
    """`latlab run` ends with keep_summary: large runs are summarized at once, so that the
    first compare reads no rows; small ones are left to compare (a few milliseconds)."""
    results = make_compare_results(tmp_path)
    record = RunRecord(run_id="base01", started_at=datetime.now(UTC), requests=requests)
    keep_summary(results, record)
    assert bool(kept(results, "base01")) is keeps
    assert not kept(results, "slow02")


def test_summarize_run_of_a_run_without_rows_keeps_nothing(tmp_path: Path) -> None:
    results = make_compare_results(tmp_path)
    (results / "requests" / "empty06").mkdir()
    (results / "runs" / "empty06.parquet").write_bytes(
        (results / "runs" / "base01.parquet").read_bytes())
    summarize_run(results, "empty06")
    assert not summaries_folder(results, "empty06").exists()
