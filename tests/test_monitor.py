"""latlab monitor: the schedule, the stop signals, rounds linked by the monitor id across
restarts, bad input, the burn-rate views and the Alertmanager payloads."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from latlab.analysis.alerts import burn_alerts
from latlab.analysis.probes import AttainmentCache
from latlab.analysis.query import open_results
from latlab.runner.core.records import RequestRow, RunRecord
from latlab.runner.monitor.loop import Schedule, StopSignal, run_rounds
from latlab.runner.monitor.settings import MonitorSettings
from latlab.runner.monitor.webhook import AlertEvent, AlertTracker
from latlab.runner.results.write import RequestWriter, write_run_record
from tests.in_process import latlab_here
from tests.result_files import request_rows, run_rows

ROOT = Path(__file__).resolve().parents[1]
PROBE = ["experiment=probe", "profile=fast", "workload.iterations=1", "matrix.model=[haiku-4-5]"]
Capsys = pytest.CaptureFixture[str]


def settings(**changes: Any) -> MonitorSettings:
    base = dict(monitor_id="m", every_s=0.05, jitter=0.0, duration_s=None, rounds=None,
                max_rps=1000.0, metrics_host="127.0.0.1", metrics_port=None, webhook=None)
    return MonitorSettings(**{**base, **changes})


def latlab(*args: str, cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def test_schedule_spacing_is_jittered_and_never_above_the_rate_bound() -> None:
    schedule = Schedule(every_s=10.0, jitter=0.2, max_rps=1.0, rng=random.Random(1))
    drawn = [schedule.spacing(requests=2) for _ in range(200)]
    assert 8.0 <= min(drawn) < 8.5 and 11.5 < max(drawn) <= 12.0
    assert schedule.spacing(requests=30) == 30.0  # 30 requests at 1/s: 30 s start to start
    assert schedule.wait_after(round_s=25.0, requests=2) == 0.0  # a late round: no wait


def test_rounds_never_overlap_and_stop_at_the_round_limit() -> None:
    spans: list[tuple[float, float]] = []

    def one_round(number: int) -> int:
        began = time.monotonic()
        time.sleep(0.02)
        spans.append((began, time.monotonic()))
        return 1

    done = run_rounds(settings(rounds=4), one_round, StopSignal(), first_round=7)
    assert done == 4 and len(spans) == 4
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:], strict=False))


def test_a_stop_request_ends_the_wait_at_once_and_no_new_round_starts() -> None:
    stop = StopSignal()
    numbers: list[int] = []

    def one_round(number: int) -> int:
        numbers.append(number)
        threading.Timer(0.1, stop.event.set).start()
        return 1

    began = time.monotonic()
    done = run_rounds(settings(every_s=60.0), one_round, stop, first_round=3)
    assert (done, numbers) == (1, [3])
    assert time.monotonic() - began < 30  # not the 60 s wait


def test_duration_limits_the_rounds() -> None:
    done = run_rounds(settings(every_s=0.1, duration_s=0.35), lambda n: 1, StopSignal())
    assert 2 <= done <= 4


def test_rounds_continue_the_monitor_id_after_a_restart(tmp_path: Path) -> None:
    for _ in range(2):
        done = latlab("monitor", *PROBE, "monitor.rounds=2", "monitor.every=0.1",
                      "monitor.max_rps=100", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    runs = sorted(run_rows(tmp_path / "results"), key=lambda r: str(r["run_id"]))
    assert [(r["monitor_id"], r["monitor_round"], r["status"]) for r in runs] == [
        ("probe", n, "finished") for n in (1, 2, 3, 4)]
    rows = request_rows(tmp_path / "results")
    assert len(rows) == 8 and all(r["error_type"] is None for r in rows)


@pytest.mark.parametrize("override, key", [
    ("monitor.every=soon", "monitor.every"),
    ("monitor.jitter=2", "monitor.jitter"),
    ("monitor.webhook=ftp://x", "monitor.webhook"),
    ("monitor.id=a/b", "monitor.id"),
    ("monitor.nope=1", "monitor.nope"),
])
def test_bad_input_is_one_line_naming_the_key_exit_2_nothing_written(
        override: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["monitor", *PROBE, override], capsys, tmp_path)  # refused: no child
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], done.stderr
    assert not (tmp_path / "results").exists()


def test_sigterm_stops_after_the_round_and_exits_0(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "latlab", "monitor", *PROBE,
                             "monitor.every=60s"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("round 1:"):
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped after 1 rounds" in out
    assert [r["status"] for r in run_rows(tmp_path / "results")] == ["finished"]


def test_a_second_ctrl_c_interrupts_the_round_and_keeps_its_rows(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "latlab", "monitor", *PROBE,
                             "workload.iterations=500"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "results").glob("requests/*/part-*.parquet")):
        assert time.monotonic() < deadline and proc.poll() is None, "the round never started"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    (run,) = run_rows(tmp_path / "results")
    assert run["status"] == "interrupted" and run["monitor_round"] == 1
    assert 0 < len(request_rows(tmp_path / "results")) < 1000


# ---------------------------------------------------------------- burn-rate views


def write_history(results: Path, monitor: str, rows: list[tuple[float, bool, float]]) -> None:
    """One monitor run holding ``rows`` of (seconds ago, failed, ttft_ms)."""
    now = datetime.now(UTC)
    run_id = f"{now:%Y%m%dT%H%M%SZ}-abc123"
    writer = RequestWriter(results, run_id)
    for i, (ago, failed, ttft) in enumerate(rows):
        writer.add(RequestRow(
            run_id=run_id, cell="c1", provider="p", api="messages", model="m", model_id="m",
            prompt="short", guardrail="none", stream=True, concurrency=1, iteration=i,
            warmup=False, started_at=now - timedelta(seconds=ago),
            error_type="overloaded" if failed else None, ttft_ms=None if failed else ttft))
    writer.flush()
    write_run_record(results, RunRecord(run_id=run_id, started_at=now, monitor_id=monitor,
                                        monitor_round=1, status="finished"))


SLO = yaml.safe_load((ROOT / "conf" / "slo" / "default.yaml").read_text())


def firing(alerts: list[Any]) -> set[tuple[str, str]]:
    return {(a.alert, a.objective) for a in alerts if a.firing}


def test_fast_burn_needs_both_windows(tmp_path: Path) -> None:
    # 1 h window: 100 requests, 3 failed (3 % bad = 30x the 0.1 % budget); all in the last 5 m
    recent = [(60.0, i < 3, 200.0) for i in range(10)]
    older = [(1800.0, False, 200.0) for _ in range(90)]
    write_history(tmp_path, "m1", recent + older)
    alerts = burn_alerts(tmp_path, SLO, "m1")
    fast = next(a for a in alerts if a.alert == "fast_burn" and a.objective == "errors")
    assert (fast.long_n, fast.long_bad, fast.short_n, fast.short_bad) == (100, 3, 10, 3)
    assert fast.long_burn == pytest.approx(30.0) and fast.short_burn == pytest.approx(300.0)
    assert ("fast_burn", "errors") in firing(alerts)
    assert ("fast_burn", "ttft") not in firing(alerts)


def test_no_alert_once_the_short_window_is_clean(tmp_path: Path) -> None:
    # the same failures, but 20 minutes ago: the 1 h window still burns, the 5 m one does not
    write_history(tmp_path, "m1", [(1200.0, i < 3, 200.0) for i in range(10)]
                  + [(60.0, False, 200.0) for _ in range(90)])
    fast = next(a for a in burn_alerts(tmp_path, SLO, "m1")
                if a.alert == "fast_burn" and a.objective == "errors")
    assert fast.long_burn == pytest.approx(30.0) and fast.short_burn == 0.0
    assert not fast.firing


def test_slow_ttft_burns_the_ttft_objective_only(tmp_path: Path) -> None:
    write_history(tmp_path, "m1", [(30.0, False, 1500.0 if i % 2 else 300.0)
                                   for i in range(20)])
    assert firing(burn_alerts(tmp_path, SLO, "m1")) == {
        ("fast_burn", "ttft"), ("medium_burn", "ttft"), ("slow_burn", "ttft")}


def test_the_monitors_attainment_cache_matches_the_view(tmp_path: Path) -> None:
    write_history(tmp_path, "m1", [(30.0, i < 2, 1500.0 if i % 3 else 300.0)
                                   for i in range(12)])
    con = open_results(tmp_path, slo=SLO, needs=["slo_attainment"])
    from_files = {(r[0], r[1]): (r[2], r[3]) for r in con.sql(
        "SELECT cell, objective, attainment, budget_remaining FROM slo_attainment").fetchall()}
    cache = AttainmentCache()
    cache.load(tmp_path, SLO, "m1")
    assert cache.attainment("m1") == from_files
    # errors: 2 of 12 failed; ttft: of the 10 that succeeded, 7 above 1 s (i = 3, 6, 9 fast)
    assert from_files[("c1", "errors")][0] == pytest.approx(10 / 12)
    assert from_files[("c1", "ttft")] == (pytest.approx(0.3), pytest.approx(1 - 0.7 / 0.01))


def test_alerts_command_prints_the_numbers(tmp_path: Path, capsys: Capsys) -> None:
    write_history(tmp_path, "m1", [(30.0, True, 0.0) for _ in range(4)])
    done = latlab_here(["alerts", "--results", str(tmp_path), "--slo", "default"], capsys,
                       tmp_path)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("FIRING fast_burn"))
    assert "c1 errors" in line and "4/4 bad" in line and "1000.00x" in line


def test_bad_slo_objective_is_one_line(tmp_path: Path, capsys: Capsys) -> None:
    write_history(tmp_path, "m1", [(30.0, False, 100.0)])
    bad = {**SLO, "objectives": {**SLO["objectives"], "errors": {"target": 99.9}}}
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump(bad))
    done = latlab_here(["alerts", "--results", str(tmp_path), "--slo", str(tmp_path / "slo.yaml")],
                       capsys, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "latlab: error: slo.objectives.errors.target: must be a share between 0 and 1 "
        "(e.g. 0.99), got 99.9"]


# ---------------------------------------------------------------- webhook payloads


def test_tracker_posts_firing_once_and_resolved_when_gone() -> None:
    tracker = AlertTracker("probe")
    event = AlertEvent({"alertname": "LatlabBurnRate_fast_burn", "cell": "c1"}, "why")
    (first,) = tracker.update([event])
    assert first["status"] == "firing" and first["version"] == "4"
    assert first["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert first["commonLabels"] == {"alertname": "LatlabBurnRate_fast_burn", "cell": "c1"}
    assert tracker.update([event]) == []  # still firing: nothing new to say
    (resolved,) = tracker.update([])
    alert = resolved["alerts"][0]
    assert resolved["status"] == alert["status"] == "resolved"
    assert alert["startsAt"] == first["alerts"][0]["startsAt"] < alert["endsAt"]
    assert alert["fingerprint"] == first["alerts"][0]["fingerprint"]


# ---------------------------------------------------------------- report --since


def test_report_since_compares_the_last_window_with_the_one_before(tmp_path: Path,
                                                                   capsys: Capsys) -> None:
    before = [(5400.0 - i, False, 200.0 + i) for i in range(20)]  # 1.5 h ago: ~200 ms
    last = [(600.0 - i, False, 400.0 + i) for i in range(20)]  # 10 min ago: ~400 ms
    write_history(tmp_path, "m1", before + last)
    done = latlab_here(["report", "--since", "1h", "--results", str(tmp_path), "--format", "json"],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    tables = json.loads(done.stdout)["tables"]
    (row,) = next(v for k, v in tables.items() if k.startswith("Last 1h vs"))
    assert (row["n_before"], row["n_last"], row["verdict"]) == (20, 20, "slower")
    assert row["delta_ms"] == 200.0 and 150 < row["ci_low_ms"] <= 200 <= row["ci_high_ms"] < 250
    over_time = next(v for k, v in tables.items() if k.startswith("TTFT over time"))
    assert sum(r["n"] for r in over_time) == 20  # only the last hour
    hours = next(v for k, v in tables.items() if k.startswith("By hour of day"))
    assert sum(r["n"] for r in hours) == 20


def test_report_since_html_plots_each_cells_percentiles(tmp_path: Path, capsys: Capsys) -> None:
    write_history(tmp_path, "m1", [(600.0 - 60 * i, False, 200.0 + i) for i in range(8)])
    page = tmp_path / "history.html"
    done = latlab_here(["report", "--since", "1h", "--results", str(tmp_path), "--html", str(page)],
                       capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert "TTFT over the last 1h" in text and "TTFT by hour of day" in text
    assert 'id="plot-0"' in text and 'id="plot-1"' in text and "Plotly.newPlot" in text
    figures = json.loads(text.split('id="figures">')[1].split("</script>")[0])
    over_time, by_hour = ([t["name"] for t in f["data"]] for f in figures)
    assert over_time == by_hour == ["c1 p50", "c1 p90", "c1 p99"]
    assert sum(figures[1]["data"][0]["customdata"]) == 8  # n per hour: every request
    assert "By hour of day (UTC)" in text  # the tables stay


def test_report_since_bad_duration_is_one_line(tmp_path: Path, capsys: Capsys) -> None:
    done = latlab_here(["report", "--since", "yesterday", "--results", str(tmp_path)], capsys,
                       tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "latlab: error: --since: expected a duration like 30s, 5m or 1h, got 'yesterday'"]
