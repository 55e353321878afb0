"""Views request_phases, budget, budget_phases, cell_pairs, budget_delta and
``latlab budget``, on a hand-computed fixture.

Run ``bud001`` (ms; connect = connect_ms + tls_ms; phases connect, headers = ttfb − connect,
first_token = ttft − ttfb, generation, tail = total − ttft − generation):

anthropic/haiku-4-5/short/none/stream        (+ a warm-up and an error, both excluded)
    r1 connect 20 (new)  ttfb 120  ttft 300  gen 500  total 850 -> 20 100 180 500 50
    r2 reused            ttfb 100  ttft 260  gen 540  total 820 ->  0 100 160 540 20
    means 10 100 170 520 35 = 835
bedrock/haiku-4-5/short/none/stream          server_latency 1500, 1480
    r1 connect 20 + tls 10  ttfb 430  ttft 1000  gen 500  total 1550 -> 30 400 570 500 50
    r2 reused               ttfb 400  ttft 1000  gen 520  total 1540 ->  0 400 600 520 20
    means 15 400 585 510 35 = 1545; server mean 1490; outside 50, 60 -> 55
bedrock/haiku-4-5/short/content_filter/stream  server 2290
    r1 reused  ttfb 1200  ttft 1800  gen 500  total 2320 -> 0 1200 600 500 20

Pairs differing in one axis: anthropic -> bedrock (provider): +710 ms = 5 + 300 + 415 − 10
+ 0, +85.03 %, server-side 1490 − 835 = 655 (the direct total stands in); none ->
content_filter (guardrail): +775 = −15 + 800 + 15 − 10 − 15, server 2290 − 1490 = 800.
anthropic vs bedrock+content_filter differ in two axes: no pair.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from latlab.analysis.budget import budget_command
from latlab.analysis.query import open_results
from latlab.runner.core.errors import ConfigError
from tests.test_analysis import T0, err, req, write_requests, write_run

RUN = "bud001"
DIRECT = "anthropic/haiku-4-5/short/none/stream"
BEDROCK = "bedrock/haiku-4-5/short/none/stream"
GUARDED = "bedrock/haiku-4-5/short/content_filter/stream"


def row(cell: str, i: int, connect: float | None, ttfb: float, ttft: float, gen: float,
        total: float, **kw: Any) -> dict[str, Any]:
    provider, _, _, guardrail, _ = cell.split("/")
    return req(RUN, cell, provider=provider, guardrail=guardrail, iteration=i,
               connect_ms=connect, new_connection=connect is not None, ttfb_ms=ttfb,
               ttft_ms=ttft, generation_ms=gen, total_ms=total, output_tokens=20,
               status=200, **kw)


def make_budget_results(root: Path) -> Path:
    r = root / "results"
    write_requests(r, RUN, "0000", [
        row(DIRECT, 0, 5000, 9000, 9000, 9000, 99999, warmup=True),
        row(DIRECT, 0, 20, 120, 300, 500, 850),
        row(DIRECT, 1, None, 100, 260, 540, 820),
        err(RUN, DIRECT, provider="anthropic", iteration=2, total_ms=30000.0),
        row(BEDROCK, 0, 20, 430, 1000, 500, 1550, tls_ms=10.0, server_latency_ms=1500.0),
        row(BEDROCK, 1, None, 400, 1000, 520, 1540, server_latency_ms=1480.0),
        row(GUARDED, 0, None, 1200, 1800, 500, 2320, server_latency_ms=2290.0),
    ])
    write_run(r, RUN, T0)
    return r


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    return make_budget_results(tmp_path)


def one(con: Any, sql: str, params: list[Any]) -> dict[str, Any]:
    cur = con.execute(sql, params)
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    return dict(zip(cols, rows[0], strict=True))


def test_phases_add_up_per_request(results: Path) -> None:
    con = open_results(results, needs=["request_phases"])  # the view under test
    rows = con.execute(
        "SELECT connect_ms, headers_ms, first_token_ms, generation_ms, tail_ms, total_ms "
        "FROM request_phases WHERE cell = ? ORDER BY iteration", [BEDROCK]).fetchall()
    assert rows == [(30, 400, 570, 500, 50, 1550), (0, 400, 600, 520, 20, 1540)]
    assert con.execute("SELECT count(*) FROM request_phases").fetchone() == (5,)


def test_budget_means_medians_and_server(results: Path) -> None:
    con = open_results(results, needs=["budget"])  # the view under test
    b = one(con, "SELECT * FROM budget WHERE cell = ?", [DIRECT])
    assert (b["n"], b["new_connections"], b["connect_new_mean_ms"]) == (2, 1, 20)
    means = [b[f"{p}_mean_ms"] for p in ("connect", "headers", "first_token", "generation",
                                         "tail", "total")]
    assert means == [10, 100, 170, 520, 35, 835]
    assert b["total_p50_ms"] == 835 and b["connect_p50_ms"] == 10
    assert b["server_n"] == 0 and b["server_mean_ms"] is None and b["server_share"] is None
    bb = one(con, "SELECT * FROM budget WHERE cell = ?", [BEDROCK])
    assert (bb["connect_new_mean_ms"], bb["first_token_mean_ms"]) == (30, 585)
    assert (bb["server_n"], bb["server_mean_ms"], bb["outside_server_mean_ms"]) == (2, 1490, 55)
    assert bb["server_share"] == pytest.approx(1490 / 1545)


def test_budget_phases_long_form(results: Path) -> None:
    con = open_results(results, needs=["budget_phases"])  # the view under test
    rows = con.execute("SELECT phase, mean_ms, share FROM budget_phases WHERE cell = ? "
                       "ORDER BY phase_order", [DIRECT]).fetchall()
    assert [(p, m) for p, m, _ in rows] == [("connect", 10), ("headers", 100),
                                            ("first_token", 170), ("generation", 520),
                                            ("tail", 35)]
    assert sum(s for _, _, s in rows) == pytest.approx(1.0)


def test_cell_pairs_one_axis_only(results: Path) -> None:
    con = open_results(results, needs=["cell_pairs"])  # the view under test
    pairs = con.execute("SELECT axis, baseline_cell, cell, baseline_value, value "
                        "FROM cell_pairs ORDER BY axis").fetchall()
    assert pairs == [("guardrail", BEDROCK, GUARDED, "none", "content_filter"),
                     ("provider", DIRECT, BEDROCK, "anthropic", "bedrock")]


def test_budget_delta(results: Path) -> None:
    con = open_results(results, needs=["budget_delta"])  # the view under test
    d = one(con, "SELECT * FROM budget_delta WHERE axis = 'provider'", [])
    assert [d[f"{p}_delta_ms"] for p in ("connect", "headers", "first_token", "generation",
                                         "tail", "total")] == [5, 300, 415, -10, 0, 710]
    assert d["total_delta_pct"] == pytest.approx(100 * 710 / 835)
    assert d["server_delta_ms"] == 655
    assert d["summary"] == "bedrock adds 710 ms (+85%) over anthropic, of which +655 ms server-side"
    g = one(con, "SELECT * FROM budget_delta WHERE axis = 'guardrail'", [])
    assert (g["total_delta_ms"], g["server_delta_ms"]) == (775, 800)
    assert g["summary"] == ("content_filter adds 775 ms (+50%) over none, "
                            "of which +800 ms server-side")


def test_budget_command_formats(results: Path) -> None:
    rows = json.loads(budget_command(results, None, "json"))
    assert [r["cell"] for r in rows] == [DIRECT, GUARDED, BEDROCK]
    assert rows[0]["total_mean_ms"] == 835 and rows[2]["server_mean_ms"] == 1490
    p50 = json.loads(budget_command(results, [RUN], "json", stat="p50"))
    assert p50[0]["headers_p50_ms"] == 100
    table = budget_command(results, None, "table")
    assert "bedrock adds 710 ms (+85%) over anthropic" in table
    csv_deltas = budget_command(results, None, "csv", deltas=True).splitlines()
    assert csv_deltas[0].startswith("run_id,axis,baseline_cell,cell,connect_delta_ms")
    assert len(csv_deltas) == 3
    with pytest.raises(ConfigError, match="--stat: unknown statistic 'p99'"):
        budget_command(results, None, "table", stat="p99")


def test_budget_command_error_only_run(tmp_path: Path) -> None:
    r = tmp_path / "results"
    write_requests(r, "err001", "0000", [err("err001", DIRECT), err("err001", DIRECT)])
    write_run(r, "err001", T0)
    out = budget_command(r, None, "table")
    assert out == "no successful measured requests in run err001: nothing to budget"


def test_budget_table_fits_100_columns_and_wide_has_every_column(tmp_path: Path) -> None:
    results = make_budget_results(tmp_path)
    table = budget_command(results, None, "table")
    lines = table.splitlines()
    assert lines[0] == "mean ms per phase of …/haiku-4-5/short/…/stream (every column: --wide)"
    assert lines[1].split() == ["cell", "n", "connect", "headers", "first_token", "generation",
                                "tail", "total", "server"]
    assert lines[3].split() == ["anthropic/none", "2", "10", "100", "170", "520", "35", "835",
                                "-"]  # cells by the parts of their names that differ
    assert "[provider: anthropic/none -> bedrock/none]" in table
    assert max(len(line) for line in lines if not line.startswith("- ")) <= 100
    wide = budget_command(results, None, "table", wide=True)
    assert "outside_server_mean_ms" in wide and "connect_new_mean_ms" in wide
    assert "outside_server_mean_ms" in budget_command(results, None, "csv").splitlines()[0]
