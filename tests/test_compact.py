"""Compaction (runner/results/compact.py, `latlab compact`): every reader sees exactly the same
rows before and after, a second pass changes nothing, a compaction killed at any point never
loses nor doubles a row, and a monitor goes on after its rounds were compacted."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from latlab.analysis.alerts import burn_alerts
from latlab.analysis.compare import compare_command
from latlab.analysis.history import history_command
from latlab.analysis.query import known_run_ids, open_results, recent_run_ids
from latlab.analysis.report import report_command
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.records import RequestRow, RunRecord
from latlab.runner.core.spans import Span
from latlab.runner.results import compact as compact_module
from latlab.runner.results.catalog import Catalog
from latlab.runner.results.compact import compact
from latlab.runner.results.layout import COMPACTED
from latlab.runner.results.resume import load_run_record
from latlab.runner.results.span_writer import SpanWriter
from latlab.runner.results.write import RequestWriter, write_run_record
from tests.in_process import latlab_here

ROOT = Path(__file__).resolve().parents[1]
SLO = yaml.safe_load((ROOT / "conf" / "slo" / "default.yaml").read_text())
NOW = datetime.now(UTC)


def write_run(results: Path, started: datetime, number: int, status: str = "finished",
              rows: int = 3, spans: bool = False) -> str:
    """One monitor round: ``rows`` requests in two part files, its record, maybe spans."""
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{number:06x}"
    writer = RequestWriter(results, run_id, batch_rows=2)
    rng = random.Random(number)
    for i in range(rows):
        failed = rng.random() < 0.2
        writer.add(RequestRow(
            run_id=run_id, cell=f"c{i % 2}", provider="p", api="messages", model="m",
            model_id="m", prompt="short", guardrail="none", stream=True, concurrency=1,
            iteration=i, warmup=False, started_at=started + timedelta(seconds=i),
            error_type="overloaded" if failed else None,
            ttft_ms=None if failed else rng.uniform(100, 2000), itl_ms=[1.0, 2.0]))
    writer.flush()
    if spans:
        span_writer = SpanWriter(results, run_id)
        span_writer.add(Span(run_id=run_id, session_id="s", span_id=f"x{number}", parent_id=None,
                             kind="session", name="s", category="agent", started_at=started))
        span_writer.flush()
    write_run_record(results, RunRecord(run_id=run_id, started_at=started, status=status,
                                        monitor_id="m1", monitor_round=number))
    return run_id


def history(results: Path) -> list[str]:
    """Rounds over the last three days, some with spans, one interrupted."""
    ids = [write_run(results, NOW - timedelta(hours=h), n, spans=n % 3 == 0)
           for n, h in enumerate((70, 49, 48.5, 30, 25, 20, 5, 0.2), start=1)]
    ids.append(write_run(results, NOW - timedelta(hours=26), 9, status="interrupted"))
    return sorted(ids)


QUERIES = {
    "requests": "SELECT * EXCLUDE (itl_ms), itl_ms::VARCHAR FROM requests "
                "ORDER BY run_id, iteration",
    "runs": "SELECT * EXCLUDE (overrides, hosts, bottleneck_actors, actors_lost) FROM runs "
            "ORDER BY run_id",
    "spans": "SELECT * FROM spans ORDER BY run_id, span_id",
    "grades": "SELECT run_id, cell, grade FROM grades ORDER BY ALL",
    "rounds": "SELECT monitor_id, last_round, runs FROM monitor_rounds",
}
VIEWS = ["requests", "runs", "spans", "grades", "monitor_rounds"]  # what QUERIES read


def snapshot(results: Path, run_ids: list[str] | None = None) -> dict[str, Any]:
    con = open_results(results, run_ids, SLO, needs=VIEWS)  # only these: binding all, ~1 s
    out: dict[str, Any] = {name: con.sql(sql).fetchall() for name, sql in QUERIES.items()}
    out["alerts"] = burn_alerts(results, SLO, "m1")
    out["known"] = known_run_ids(results)
    out["recent"] = recent_run_ids(results, 86400)
    out["history"] = history_command(results, "1d", SLO, "json")
    out["compare"] = compare_command(results, [], "json", latest=3)
    out["report"] = report_command(results, run_ids, None, None, None, SLO, "json")
    return out


def files(results: Path) -> list[str]:
    return sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file())


def test_compaction_keeps_every_row_and_column(tmp_path: Path) -> None:
    ids = history(tmp_path)
    before, one_before = snapshot(tmp_path), snapshot(tmp_path, [ids[2]])
    done = compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    # 7 finished rounds over 1 h old, on 3 or 4 UTC days; the interrupted one and the
    # 12-minute-old one keep their own files
    assert done.runs == 7 and done.removed > 0
    assert sorted(Catalog(tmp_path).loose_ids()) == sorted([ids[-1], next(
        r for r in ids if r.endswith("000009"))])
    assert len(before["requests"]) == 27 and len(before["spans"]) == 2
    assert snapshot(tmp_path) == before
    assert snapshot(tmp_path, [ids[2]]) == one_before  # one run of a compacted day
    assert not (tmp_path / "requests" / ids[0]).exists()
    assert not (tmp_path / "runs" / f"{ids[0]}.parquet").exists()


def test_a_second_pass_changes_nothing(tmp_path: Path) -> None:
    history(tmp_path)
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    listed = files(tmp_path)
    stamps = {p: os.stat(tmp_path / p).st_mtime_ns for p in listed}
    again = compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    assert (again.runs, again.removed) == (0, 0)
    assert files(tmp_path) == listed
    assert {p: os.stat(tmp_path / p).st_mtime_ns for p in listed} == stamps


def test_killed_before_the_small_files_were_removed_counts_each_row_once(
        tmp_path: Path) -> None:
    history(tmp_path)
    before = snapshot(tmp_path)
    done = compact(tmp_path, NOW - timedelta(hours=1), grace_s=3600)  # nothing removed yet
    assert done.runs == 7 and done.removed == 0
    assert len(list((tmp_path / "requests").iterdir())) == 9  # every run's own files remain
    assert snapshot(tmp_path) == before
    # a later round lands on a compacted day: the day's next generation supersedes the first
    write_run(tmp_path, NOW - timedelta(hours=25, minutes=1), 10)
    before = snapshot(tmp_path)
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=3600)
    assert any(p.name.startswith("runs-000002") for p in (tmp_path / COMPACTED).rglob("*"))
    assert snapshot(tmp_path) == before
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)  # the garbage goes
    assert not any(p.name.endswith("000001.parquet") and (p.parent / p.name.replace(
        "000001", "000002")).exists() for p in (tmp_path / COMPACTED).rglob("*"))
    assert snapshot(tmp_path) == before


def test_killed_before_the_runs_file_the_generation_is_ignored(tmp_path: Path) -> None:
    history(tmp_path)
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    before = snapshot(tmp_path)
    # a killed pass: the next generation's requests file and a temporary file, no runs file
    for day in (tmp_path / COMPACTED).iterdir():
        if day.is_dir():
            first = (day / "requests-000001.parquet").read_bytes()
            (day / "requests-000002.parquet").write_bytes(first)
            (day / ".requests-000002.parquet.1234.tmp").write_bytes(b"partial")
    assert snapshot(tmp_path) == before
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    assert not [p for p in (tmp_path / COMPACTED).rglob("*0002*")]
    assert snapshot(tmp_path) == before


def row_counts(results: Path) -> list[tuple[Any, ...]]:
    """Rows, runs and the TTFT sum, as the ``requests`` view reads them."""
    con = open_results(results, slo=SLO, needs=["requests"])
    return con.sql("SELECT count(*), count(DISTINCT run_id), round(sum(ttft_ms), 6) "
                   "FROM requests").fetchall()


KILL_AFTER_S = (0.6, 1.2, 1.8, 2.4)  # from process start; its imports take ~0.5 s


def test_kill_9_at_any_moment_loses_and_doubles_nothing(tmp_path: Path) -> None:
    """Real kills of `latlab compact` at several moments (wherever they land: before, inside
    or after the merge of one of 20 days), each followed by the same rows."""
    for n in range(40):
        write_run(tmp_path, NOW - timedelta(hours=2 + 12 * n), n + 1, spans=n % 4 == 0)
    expected = row_counts(tmp_path)
    for delay in KILL_AFTER_S:
        proc = subprocess.Popen([sys.executable, "-m", "latlab", "compact", "--results",
                                 str(tmp_path), "--grace", "0"], stdout=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert row_counts(tmp_path) == expected
        write_run(tmp_path, NOW - timedelta(hours=3, minutes=delay * 10), 100 + int(delay * 10))
        expected = row_counts(tmp_path)
    assert compact(tmp_path, NOW, grace_s=0).runs > 0
    assert row_counts(tmp_path) == expected
    assert Catalog(tmp_path).loose_ids() == []


def test_a_compacted_run_is_not_resumed_and_an_interrupted_one_is_not_compacted(
        tmp_path: Path) -> None:
    ids = history(tmp_path)
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    interrupted = next(r for r in ids if r.endswith("000009"))
    assert load_run_record(tmp_path, interrupted).status == "interrupted"
    with pytest.raises(ConfigError, match=f"resume: run {ids[0]} finished and was compacted"):
        load_run_record(tmp_path, ids[0])


def test_large_runs_keep_their_own_files(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    history(tmp_path)
    biggest = max(sum(f.stat().st_size for f in (tmp_path / d / r).glob("*.parquet"))
                  for d in ("requests",) for r in os.listdir(tmp_path / d))
    monkeypatch.setattr(compact_module, "SMALL_RUN_BYTES", biggest)  # a record's bytes over
    assert compact(tmp_path, NOW - timedelta(hours=1), grace_s=0).runs == 0
    monkeypatch.setattr(compact_module, "SMALL_RUN_BYTES", 10 * biggest)
    assert compact(tmp_path, NOW - timedelta(hours=1), grace_s=0).runs == 7


def test_a_damaged_compacted_day_is_named_and_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = history(tmp_path)
    compact(tmp_path, NOW - timedelta(hours=1), grace_s=0)
    day = tmp_path / COMPACTED / f"{ids[0][:4]}-{ids[0][4:6]}-{ids[0][6:8]}"
    (day / "runs-000001.parquet").write_bytes(b"not parquet")
    rows = open_results(tmp_path, slo=SLO).sql("SELECT DISTINCT run_id FROM requests").fetchall()
    assert ids[0] not in {r for (r,) in rows} and ids[-1] in {r for (r,) in rows}
    assert f"skipping {day / 'runs-000001.parquet'}: not a readable Parquet file" in (
        capsys.readouterr().err)
    listed = files(tmp_path)
    assert compact(tmp_path, NOW, grace_s=0).runs == 1  # the 12-minute-old round only
    assert [f for f in listed if day.name in f] == [f for f in files(tmp_path) if day.name in f]


def latlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("args, line", [
    (["--results", "nowhere"], "--results: nowhere is not a directory (point it at a "
                               "results dir)"),
    (["--older-than", "soon"], "--older-than: expected a duration like 30s, 5m or 1h, "
                               "got 'soon'"),
    (["--grace", "-1"], "--grace: expected a duration like 30s, 5m or 1h, got '-1'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], line: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "results").mkdir()
    done = latlab_here(["compact", *args], capsys, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"latlab: error: {line}"]
    assert not (tmp_path / "results" / COMPACTED).exists()


PROBE = ["experiment=probe", "profile=fast", "workload.iterations=1", "matrix.model=[haiku-4-5]",
         "monitor.every=0.1", "monitor.max_rps=100"]


def test_a_monitor_goes_on_after_its_rounds_were_compacted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab("monitor", *PROBE, "monitor.rounds=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    compacted = latlab_here(["compact", "--older-than", "1ms", "--grace", "0"], capsys, tmp_path)
    assert compacted.returncode == 0, compacted.stderr
    assert compacted.stdout.startswith("compacted 2 run(s) into 1 day(s)")
    assert not list((tmp_path / "results" / "requests").iterdir())
    done = latlab("monitor", *PROBE, "monitor.rounds=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "round 3: run" in done.stdout + done.stderr
    sql = latlab_here(["sql", "SELECT monitor_round, count(*) FROM requests JOIN runs "
                       "USING (run_id) GROUP BY 1 ORDER BY 1", "--format", "csv"], capsys,
                      tmp_path)
    assert sql.stdout.splitlines() == ["monitor_round,count_star()", "1,2", "2,2", "3,2"]


def test_the_monitor_compacts_rounds_older_than_an_hour_by_itself(tmp_path: Path) -> None:
    results = tmp_path / "results"
    old = [write_run(results, NOW - timedelta(hours=h), n) for n, h in ((1, 3), (2, 2))]
    done = latlab("monitor", *PROBE, "monitor.rounds=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"compacted 2 run\(s\) into [12] day\(s\)", done.stdout + done.stderr)
    catalog = Catalog(results)
    assert all(catalog.is_packed(r) for r in old)
    (new,) = catalog.loose_ids()  # this round: not an hour old
    assert new not in old and len(catalog.run_ids()) == 3
