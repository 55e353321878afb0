"""analysis/: views, grades, query helper and rendering, checked on hand-computed fixtures.

Fixture (two runs; ``aaa222`` started *after* ``bbb111`` though its id sorts first):

bbb111 / fast  4 successes + 1 warm-up (huge values, must be excluded)
    ttft 100 200 300 400 -> p50 = 200 + .5*100 = 250, p90 = 300 + .7*100 = 370,
                            p95 = 385, p99 = 300 + .97*100 = 397
    output_tps 100 80 NULL 120 -> mean 100;  itl [10,20] [30] [] [40,50,60]
    total 1100 1200 500 2400, output_tokens 11 6 1 21
bbb111 / slow  ttft 1000 3000 + 1 timeout -> p50 2000 (D), p99 1000 + .99*2000 = 2980 (C),
    tps mean (50+30)/2 = 40 (C), error_rate 1/3 (F) -> F
aaa222 / dead  2 errors (+ a successful warm-up) -> no successes: all F
aaa222 / mid   ttft 600 700, tps 70 70 -> p50 650 (B), p99 699 (A), tps B, errors A -> B
aaa222 / nostream  one success, no output_tps -> that metric ungraded; overall A
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from latlab.analysis import OUTPUT_FORMATS
from latlab.analysis.commands import grade_command, latest_run_ids, sql_command
from latlab.analysis.query import open_results, render, run_sql
from latlab.analysis.slo import default_slo, validate_slo
from latlab.runner.core.errors import ConfigError, ResultsError
from latlab.runner.core.records import REQUESTS_SCHEMA, RUNS_SCHEMA, RequestRow

OLD, NEW = "bbb111", "aaa222"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 2, tzinfo=UTC)


# ---------------------------------------------------------------- fixture helpers


def req(run_id: str, cell: str, **kw: Any) -> dict[str, Any]:
    """One requests row (REQUESTS_SCHEMA) with plausible defaults."""
    base: dict[str, Any] = dict(
        run_id=run_id, cell=cell, provider="emulator", api="messages", model="haiku-4-5",
        model_id="claude-haiku-4-5", prompt="short", guardrail="none", stream=True,
        concurrency=1, iteration=0, warmup=False, started_at=T0,
    )
    base.update(kw)
    return dataclasses.asdict(RequestRow(**base))


def err(run_id: str, cell: str, error_type: str = "timeout", **kw: Any) -> dict[str, Any]:
    return req(run_id, cell, error_type=error_type, error_message="boom", status=None, **kw)


def ok(run_id: str, cell: str, ttft: float, total: float, tokens: int, tps: float | None,
       itl: list[float], **kw: Any) -> dict[str, Any]:
    return req(run_id, cell, ttft_ms=ttft, ttfb_ms=ttft / 2, total_ms=total,
               generation_ms=total - ttft, output_tokens=tokens, output_tps=tps, itl_ms=itl,
               input_tokens=10, status=200, stop_reason="end_turn", **kw)


def write_requests(results: Path, run_id: str, part: str, rows: list[dict[str, Any]],
                   drop: tuple[str, ...] = ()) -> None:
    table = pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA).drop_columns(list(drop))
    run_dir = results / "requests" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, run_dir / f"part-{part}.parquet")


def write_run(results: Path, run_id: str, started_at: datetime) -> None:
    row = dict(
        run_id=run_id, started_at=started_at, ended_at=None, status="finished",
        latlab_version="0.1.0", host="test", python_version="3.11.9", config_yaml="a: 1\n",
        overrides=["model=haiku-4-5"], choices_json="{}", experiment=None, sweep_job=None,
        run_name=None, cells=2, requests=7, errors=1, emulator_json=None,
    )
    (results / "runs").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist([row], schema=RUNS_SCHEMA),
                   results / "runs" / f"{run_id}.parquet")


def make_results(root: Path) -> Path:
    """Write the fixture described in the module docstring under ``root/results``."""
    r = root / "results"
    write_requests(r, OLD, "0000", [
        ok(OLD, "fast", 9999, 20000, 2, 1.0, [5000.0], warmup=True),
        ok(OLD, "fast", 100, 1100, 11, 100.0, [10.0, 20.0]),
        ok(OLD, "fast", 200, 1200, 6, 80.0, [30.0], iteration=1),
        ok(OLD, "slow", 1000, 5000, 201, 50.0, [25.0]),
    ])
    write_requests(r, OLD, "0001", [  # an older file without a column: union_by_name
        ok(OLD, "fast", 300, 500, 1, None, [], iteration=2),
        ok(OLD, "fast", 400, 2400, 21, 120.0, [40.0, 50.0, 60.0], iteration=3),
        ok(OLD, "slow", 3000, 9000, 181, 30.0, [35.0], iteration=1),
        err(OLD, "slow", total_ms=30000.0, iteration=2),
    ], drop=("guardrail_action",))
    (r / "requests" / OLD / "part-0002.parquet.tmp").write_text("not parquet")
    write_requests(r, NEW, "0000", [
        ok(NEW, "dead", 100, 200, 5, 90.0, [1.0], warmup=True),
        err(NEW, "dead", "rate_limited"),
        err(NEW, "dead", "rate_limited", iteration=1),
        ok(NEW, "mid", 600, 1600, 11, 70.0, [100.0]),
        ok(NEW, "mid", 700, 1700, 11, 70.0, [100.0], iteration=1),
        ok(NEW, "nostream", 300, 300, 10, None, [], stream=False),
    ])
    write_run(r, OLD, T0)
    write_run(r, NEW, T1)
    return r


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    return make_results(tmp_path)


def cell(con: Any, run_id: str, name: str, view: str = "cells") -> dict[str, Any]:
    cur = con.execute(f"SELECT * FROM {view} WHERE run_id = ? AND cell = ?", [run_id, name])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    return dict(zip(cols, rows[0], strict=True))


# ---------------------------------------------------------------- views


def test_requests_include_warmup_measured_excludes_it(results: Path) -> None:
    con = open_results(results)
    assert con.execute("SELECT count(*) FROM requests").fetchone() == (14,)
    assert con.execute("SELECT count(*) FROM measured").fetchone() == (12,)
    assert con.execute("SELECT count(*) FROM runs").fetchone() == (2,)
    assert con.execute("SELECT count(*) FROM cells").fetchone() == (5,)


def test_cell_latency_stats_exact(results: Path) -> None:
    c = cell(open_results(results, needs=["cells"]), OLD, "fast")
    assert (c["n"], c["ok"], c["errors"], c["error_rate"]) == (4, 4, 0, 0.0)
    assert (c["ttft_min_ms"], c["ttft_max_ms"], c["ttft_mean_ms"]) == (100.0, 400.0, 250.0)
    assert c["ttft_p50_ms"] == pytest.approx(250.0, abs=1e-9)
    assert c["ttft_p90_ms"] == pytest.approx(370.0, abs=1e-9)
    assert c["ttft_p95_ms"] == pytest.approx(385.0, abs=1e-9)
    assert c["ttft_p99_ms"] == pytest.approx(397.0, abs=1e-9)
    assert c["ttft_stddev_ms"] == pytest.approx(math.sqrt(50000 / 3), rel=1e-12)
    assert c["ttfb_p50_ms"] == pytest.approx(125.0, abs=1e-9)
    assert c["total_mean_ms"] == pytest.approx(1300.0, abs=1e-9)
    assert c["generation_max_ms"] == pytest.approx(2000.0, abs=1e-9)
    assert c["output_tps_mean"] == pytest.approx(100.0, abs=1e-9)
    assert c["output_tps_p50"] == pytest.approx(100.0, abs=1e-9)
    assert c["output_tps_p99"] == pytest.approx(100 + 0.98 * 20, abs=1e-9)


def test_errors_count_but_stats_use_successes_only(results: Path) -> None:
    c = cell(open_results(results, needs=["cells"]), OLD, "slow")
    assert (c["n"], c["ok"], c["errors"]) == (3, 2, 1)
    assert c["error_rate"] == pytest.approx(1 / 3, rel=1e-12)
    assert c["total_mean_ms"] == pytest.approx(7000.0, abs=1e-9)  # the 30 s timeout excluded
    assert c["ttft_p99_ms"] == pytest.approx(2980.0, abs=1e-9)
    dead = cell(open_results(results, needs=["cells"]), NEW, "dead")
    assert (dead["n"], dead["ok"], dead["error_rate"]) == (2, 0, 1.0)
    assert dead["ttft_p50_ms"] is None and dead["itl_mean_ms"] is None


def test_per_token_metrics(results: Path) -> None:
    c = cell(open_results(results, needs=["cells"]), OLD, "fast")
    # gaps 10 20 30 40 50 60 (the warm-up's 5000 excluded)
    assert c["itl_mean_ms"] == pytest.approx(35.0, abs=1e-9)
    assert c["itl_p50_ms"] == pytest.approx(35.0, abs=1e-9)
    assert c["itl_p90_ms"] == pytest.approx(55.0, abs=1e-9)
    assert c["itl_p99_ms"] == pytest.approx(59.5, abs=1e-9)
    assert c["itl_request_mean_ms"] == pytest.approx((15 + 30 + 50) / 3, rel=1e-12)
    # (1100-100)/10 = 100, (1200-200)/5 = 200, 1 token excluded, (2400-400)/20 = 100
    assert c["tpot_mean_ms"] == pytest.approx(400 / 3, rel=1e-12)
    assert c["norm_latency_mean_ms"] == pytest.approx((100 + 200 + 500 + 2400 / 21) / 4)


def test_gaps_view(results: Path) -> None:
    con = open_results(results, [OLD], needs=["gaps"])
    rows = con.execute(
        "SELECT iteration, gap_index, gap_ms FROM gaps WHERE cell = 'fast' ORDER BY 1, 2"
    ).fetchall()
    assert rows == [(0, 1, 10.0), (0, 2, 20.0), (1, 1, 30.0),
                    (3, 1, 40.0), (3, 2, 50.0), (3, 3, 60.0)]


# ---------------------------------------------------------------- grades


def grade_row(con: Any, run_id: str, name: str) -> tuple[Any, ...]:
    return tuple(con.execute(
        "SELECT grade, ttft_p50_grade, ttft_p99_grade, output_tps_mean_grade, error_rate_grade "
        "FROM grades WHERE run_id = ? AND cell = ?", [run_id, name]).fetchone())


def test_grades_default_slo(results: Path) -> None:
    con = open_results(results)
    assert grade_row(con, OLD, "fast") == ("A", "A", "A", "A", "A")
    assert grade_row(con, OLD, "slow") == ("F", "D", "C", "C", "F")
    assert grade_row(con, NEW, "dead") == ("F", "F", "F", "F", "F")
    assert grade_row(con, NEW, "mid") == ("B", "B", "A", "B", "A")
    assert grade_row(con, NEW, "nostream") == ("A", "A", "A", None, "A")
    g = cell(con, NEW, "dead", view="grades")
    assert (g["error_rate"], g["ttft_p50_ms"], g["n"], g["ok"]) == (1.0, None, 2, 0)


def test_grades_custom_slo(results: Path) -> None:
    slo = {"thresholds": {
        "A": {"ttft_p50_ms": 200, "ttft_p99_ms": 300, "output_tps_mean": 150, "error_rate": 0},
        "B": {"ttft_p50_ms": 260, "ttft_p99_ms": 400, "output_tps_mean": 100, "error_rate": 0},
        "C": {"ttft_p50_ms": 300, "ttft_p99_ms": 500, "output_tps_mean": 90, "error_rate": 0.5},
        "D": {"ttft_p50_ms": 3000, "ttft_p99_ms": 5000, "output_tps_mean": 10,
              "error_rate": 0.5},
    }}
    con = open_results(results, slo=slo)
    assert grade_row(con, OLD, "fast") == ("B", "B", "B", "B", "A")
    assert grade_row(con, OLD, "slow") == ("D", "D", "D", "D", "C")


def test_default_slo_is_conf_default(results: Path) -> None:
    slo = default_slo()
    assert slo["thresholds"]["A"]["ttft_p50_ms"] == 500
    validate_slo(slo)
    con = open_results(results, slo=OmegaConf.create(slo))  # a Hydra config node works too
    assert con.execute("SELECT grade, rank, ttft_p99_ms FROM slo_thresholds ORDER BY rank"
                       ).fetchall() == [("A", 1, 1500.0), ("B", 2, 2500.0), ("C", 3, 4000.0),
                                        ("D", 4, 6000.0)]


@pytest.mark.parametrize(
    ("grade", "metric", "value", "message"),
    [
        ("B", "ttft_p50_ms", 400, "slo.thresholds.B.ttft_p50_ms: 400 is stricter than A"),
        ("D", "output_tps_mean", 45, "slo.thresholds.D.output_tps_mean: 45 is stricter"),
        ("C", "error_rate", 0.001, "slo.thresholds.C.error_rate"),
        ("C", "ttft_p99_ms", "fast", "slo.thresholds.C.ttft_p99_ms: must be a number"),
        ("A", "ttft_p99_ms", None, "slo.thresholds.A.ttft_p99_ms: missing"),
    ],
)
def test_validate_slo_rejects(grade: str, metric: str, value: Any, message: str) -> None:
    slo = default_slo()
    slo["thresholds"][grade][metric] = value
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        validate_slo(slo)


def test_validate_slo_missing_grade(results: Path) -> None:
    slo = default_slo()
    del slo["thresholds"]["C"]
    with pytest.raises(ConfigError, match=r"slo\.thresholds\.C: missing"):
        open_results(results, slo=slo)
    with pytest.raises(ConfigError, match=r"slo\.thresholds: missing"):
        validate_slo({"name": "x"})


# ---------------------------------------------------------------- run selection, errors


def test_empty_or_missing_results_dir(tmp_path: Path) -> None:
    for d in (tmp_path, tmp_path / "nope"):
        with pytest.raises(ResultsError) as exc:
            open_results(d)
        assert str(exc.value) == f"no results under {d}: run `latlab run` first"


def test_run_id_selection(results: Path) -> None:
    con = open_results(results, ["bbb"])
    assert con.execute("SELECT DISTINCT run_id FROM requests").fetchall() == [(OLD,)]
    assert con.execute("SELECT run_id FROM runs").fetchall() == [(OLD,)]
    with pytest.raises(ResultsError) as exc:
        open_results(results, ["zzz"])
    assert str(exc.value) == "unknown run id 'zzz'; known: bbb111, aaa222"
    write_run(results, "bbb999", T0)
    with pytest.raises(ResultsError, match="run id 'bbb' is ambiguous: bbb111, bbb999"):
        open_results(results, ["bbb"])


def test_unknown_run_id_lists_at_most_five(results: Path) -> None:
    for i in range(6):
        write_run(results, f"ccc{i}", T0)
    with pytest.raises(ResultsError) as exc:
        open_results(results, ["x"])
    assert str(exc.value) == (
        "unknown run id 'x'; known: ccc5, ccc4, ccc3, ccc2, ccc1 (and 3 more)"
    )


def test_run_without_request_files(results: Path) -> None:
    write_run(results, "ddd333", T1)
    con = open_results(results, ["ddd"])
    assert con.execute("SELECT count(*) FROM cells").fetchone() == (0,)
    assert latest_run_ids(con, 1) == ["ddd333"]


def test_run_sql_error_is_config_error(results: Path) -> None:
    con = open_results(results)
    with pytest.raises(ConfigError) as exc:
        run_sql(con, "SELECT nope FROM cells")
    assert "nope" in str(exc.value) and "\n" not in str(exc.value)
    assert run_sql(con, "SELECT 1 AS x, 'a' AS y") == (["x", "y"], [(1, "a")])


# ---------------------------------------------------------------- rendering


DATA = (["name", "value", "flag", "when"],
        [("a", 1.23456789, True, T0), ("b", None, False, None), ("c", 0.000123456, None, None)])


def test_render_csv() -> None:
    assert render(DATA, "csv") == (
        "name,value,flag,when\n"
        "a,1.235,true,2025-01-01T00:00:00+00:00\n"
        "b,,false,\n"
        "c,0.0001235,,"
    )


def test_render_json() -> None:
    assert json.loads(render(DATA, "json")) == [
        {"name": "a", "value": 1.235, "flag": True, "when": "2025-01-01T00:00:00+00:00"},
        {"name": "b", "value": None, "flag": False, "when": None},
        {"name": "c", "value": 0.0001235, "flag": None, "when": None},
    ]
    assert json.loads(render((["x"], [(float("nan"),)]), "json")) == [{"x": None}]


def test_render_table_and_relation(results: Path) -> None:
    assert render(DATA, "table", width=80).splitlines() == [
        "  name       value   flag    when",
        " " + "─" * 54,
        "  a          1.235   true    2025-01-01T00:00:00+00:00",
        "  b              -   false   -",
        "  c      0.0001235   -       -",
    ]
    con = open_results(results)
    rel = con.sql("SELECT cell, n FROM cells WHERE run_id = 'bbb111' ORDER BY cell")
    assert render(rel, "csv") == "cell,n\nfast,4\nslow,3"
    with pytest.raises(ConfigError, match="unknown output format 'xml'"):
        render(DATA, "xml")
    assert OUTPUT_FORMATS == ("table", "csv", "json")


# ---------------------------------------------------------------- commands


def test_grade_command_latest_run(results: Path) -> None:
    out = list(csv.DictReader(io.StringIO(grade_command(results, None, "csv"))))
    assert [(r["run_id"], r["cell"], r["grade"]) for r in out] == [
        (NEW, "dead", "F"), (NEW, "mid", "B"), (NEW, "nostream", "A"),
    ]
    assert out[1] == {
        "run_id": NEW, "cell": "mid", "grade": "B",
        "ttft_p50_ms": "650.0", "ttft_p50_grade": "B",
        "ttft_p99_ms": "699.0", "ttft_p99_grade": "A",
        "output_tps_mean": "70.0", "output_tps_mean_grade": "B",
        "error_rate": "0.0", "error_rate_grade": "A", "n": "2",
    }


def test_grade_command_run_ids_and_fallback(results: Path) -> None:
    rows = json.loads(grade_command(results, [OLD, NEW], "json"))
    assert [(r["run_id"], r["cell"], r["grade"]) for r in rows] == [
        (NEW, "dead", "F"), (NEW, "mid", "B"), (NEW, "nostream", "A"),
        (OLD, "fast", "A"), (OLD, "slow", "F"),
    ]
    for f in (results / "runs").iterdir():
        f.unlink()
    rows = json.loads(grade_command(results, None, "json"))
    assert rows == []  # parts without their runs record are skipped, each named (stderr)
    with pytest.raises(ConfigError, match="unknown output format"):
        grade_command(results, None, "yaml")


def test_sql_command(results: Path) -> None:
    out = sql_command("SELECT cell, ok FROM cells ORDER BY cell", results, [NEW], "csv")
    assert out == "cell,ok\ndead,0\nmid,2\nnostream,1"
    assert "fast" in sql_command("SELECT cell FROM cells", results, None, "table")


def test_per_token_distributions_and_goodput(results: Path) -> None:
    con = open_results(results)
    c = cell(con, OLD, "fast")
    # gaps 10 20 30 40 50 60
    assert (c["itl_min_ms"], c["itl_max_ms"]) == (10.0, 60.0)
    assert c["itl_p95_ms"] == pytest.approx(57.5, abs=1e-9)
    assert c["itl_stddev_ms"] == pytest.approx(math.sqrt(350), rel=1e-12)
    # TPOT per request 100, 200, 100 (1-token request excluded) -> p50 100, p99 198
    assert (c["tpot_p50_ms"], c["tpot_p99_ms"]) == (pytest.approx(100), pytest.approx(198))
    # total/tokens 100, 200, 500, 114.29 -> p50 (114.29 + 200) / 2
    assert c["norm_latency_p50_ms"] == pytest.approx((2400 / 21 + 200) / 2)
    # 1000 * tokens / total: 10, 5, 2, 8.75
    assert c["e2e_tps_mean"] == pytest.approx(25.75 / 4)
    # goodput against grade A (TTFT <= 1500, tokens/s >= 80 where measured)
    assert (c["good"], c["goodput"]) == (4, 1.0)
    slow = cell(con, OLD, "slow")  # tps 50 and 30 are below 80; the timeout is not good
    assert (slow["good"], slow["goodput"]) == (0, 0.0)
    assert cell(con, NEW, "mid")["goodput"] == 0.0  # 70 tokens/s
    assert cell(con, NEW, "nostream")["goodput"] == 1.0  # no tokens/s to miss
    assert cell(con, NEW, "dead")["goodput"] == 0.0
