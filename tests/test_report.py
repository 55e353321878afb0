"""``latlab report``: Markdown and a self-contained HTML file, the HTML opened in headless
Chromium (Debian's package): no console errors, plotly drew every plot, and the screenshot
shows them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from latlab.analysis import plots
from latlab.analysis.readable import clip, header, number, shared_parts, short_name
from latlab.analysis.report import report_command
from latlab.runner.core.errors import ConfigError
from tests.test_analysis import T0, err, ok, write_requests, write_run
from tests.test_budget import BEDROCK, DIRECT, make_budget_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
                "--proxy-server=http://127.0.0.1:9",  # any fetch fails, and logs an error
                "--virtual-time-budget=15000"]  # let the scripts draw before the screenshot
HAIKU, SONNET = "emulator/haiku-4-5/short/none/stream", "emulator/sonnet-4-5/short/none/stream"


def interleaved(tmp_path: Path, n: int = 40) -> Path:
    """One run of two cells interleaved in time, each request with its id: a real run's
    shape (Sonnet slower), as `latlab run experiment=quickstart` leaves it."""
    r = tmp_path / "results"
    rows: list[dict[str, Any]] = []
    for i in range(n):
        for j, (cell, base) in enumerate(((HAIKU, 200.0), (SONNET, 400.0))):
            ttft = base + (37 * i) % 50
            rows.append(ok("qs0001", cell, ttft, ttft + 400 + 5 * j, 40, 90.0 + j * 50 + i % 7,
                           [10.0], iteration=i, model=cell.split("/")[1],
                           request_id=f"req_{j}_{i:03d}",
                           started_at=T0 + timedelta(milliseconds=250 * i + 120 * j)))
    write_requests(r, "qs0001", "0000", rows)
    write_run(r, "qs0001", T0)
    return r



def test_markdown_has_every_section(tmp_path: Path) -> None:
    md = report_command(make_budget_results(tmp_path), None, None, None, None)
    for heading in ("# latlab report: bud001", "## Runs", "## Grades", "## Budget (mean ms",
                    "## Cells compared by provider", "## Cells compared by guardrail",
                    "## What each axis adds (budget_delta)", "## Advice"):
        assert heading in md
    assert f"| bud001 | {DIRECT} | 2 | 10.0 | 100.0 | 170.0 | 520.0 | 35.0 | 835.0 | – |" in md
    assert "- bedrock adds 710 ms (+85%) over anthropic, of which +655 ms server-side" in md
    assert "too few requests (< 10)" in md  # two requests per cell are not judged


def test_format_html_and_json_print_the_same_report(tmp_path: Path) -> None:
    results = make_budget_results(tmp_path)
    page = report_command(results, None, None, None, None, fmt="html")
    assert page.startswith("<!doctype html>") and page.endswith("</html>")
    data = json.loads(report_command(results, None, None, None, None, fmt="json"))
    assert data["runs"] == ["bud001"] and data["empty"] is False
    budget = data["tables"]["Budget (mean ms; phases add up to the total)"]
    assert budget[0]["cell"] == DIRECT and budget[0]["total_mean_ms"] == 835.0
    assert "Advice" in data["notes"]
    with pytest.raises(ConfigError, match="--format: unknown report format 'pdf'"):
        report_command(results, None, None, None, None, fmt="pdf")


def script_free(page: str) -> str:
    """The page without the contents of its inline scripts (plotly.js names URLs it never
    fetches here: topojson, mapbox)."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", page, flags=re.S)


def figures_of(page: str) -> list[dict[str, Any]]:
    found = re.search(r'<script type="application/json" id="figures">(.*?)</script>', page,
                      re.S)
    assert found is not None
    data: list[dict[str, Any]] = json.loads(found.group(1).replace("<\\/", "</"))
    return data


def test_html_is_self_contained_with_interactive_plots(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    note = report_command(make_budget_results(tmp_path), ["bud"], None, out, tmp_path / "r.md")
    assert note == f"Markdown report -> {tmp_path / 'r.md'}\nHTML report -> {out}"
    page = out.read_text()
    # six plots and one interval plot per axis compared (provider, guardrail)
    assert page.count("<figure>") == 8 and page.count('class="plot"') == 7
    assert page.count("no data") == 1  # tokens/s: the fixture's rows have no output_tps
    assert re.findall(r"<script[^>]*>", page) == [
        "<script>", '<script type="application/json" id="figures">', "<script>"]
    outside = script_free(page)
    for forbidden in ("src=", "href=", "url(", "@import", "http://", "https://", "<link"):
        assert forbidden not in outside
    assert "Plotly.newPlot" in page and BEDROCK in page
    budget = figures_of(page)[4]
    assert [t.get("name") for t in budget["data"][:5]] == [
        "connect", "headers", "first_token", "generation", "tail"]
    assert budget["data"][-1]["text"][0].endswith(" ms")  # the total at the bar's end


def test_plots_show_samples_names_n_and_intervals(tmp_path: Path) -> None:
    page = report_command(interleaved(tmp_path), None, None, None, None, fmt="html")
    ecdf, ttft_box, *_, over_time, compared = figures_of(page)
    haiku = ecdf["data"][0]
    assert haiku["name"] == "haiku-4-5 (n=40)"  # the shared parts of the names dropped
    assert len(haiku["x"]) == 41 and haiku["y"][0] == 0.0 and haiku["y"][-1] == 1.0
    assert haiku["y"][1] == 1 / 40  # one step per real request
    assert sorted(haiku["x"]) == haiku["x"] and haiku["line"]["shape"] == "hv"
    assert haiku["customdata"][0][0].startswith("req_0_")
    assert HAIKU in haiku["hovertemplate"] and "run qs0001 · n 40" in haiku["hovertemplate"]
    assert ttft_box["data"][0]["y"] == ["sonnet-4-5 · n=40"]
    ends = ttft_box["data"][1]  # min and max are drawn: the axis covers every whisker
    assert ends["x"][0] <= ttft_box["data"][0]["lowerfence"][0]
    ticks = over_time["data"][1]  # the schedule: each request's start, a row per cell
    assert ticks["yaxis"] == "y2" and ticks["x"][:2] == [0.0, 0.25]
    assert over_time["data"][3]["x"][0] == 0.12  # Sonnet's first start, between Haiku's
    assert [t["name"] for t in compared["data"]] == ["slower"]
    assert compared["data"][0]["text"] == ["  slower"] * 2  # TTFT and total
    assert compared["layout"]["xaxis"]["range"][0] < 0  # the line at no difference shows


def test_bounded_sample_of_a_big_cell(tmp_path: Path) -> None:
    from latlab.analysis.query import open_results
    from latlab.analysis.report import figures

    con = open_results(interleaved(tmp_path, n=100))
    try:
        ecdf = figures(con, ["qs0001"], per_cell=25)[0]  # every 4th iteration
    finally:
        con.close()
    assert ecdf.data[0]["name"] == "haiku-4-5 (25 of n=100)"
    assert [len(t["x"]) for t in ecdf.data] == [26, 26]


def test_readable_headers_and_numbers() -> None:
    assert header("output_tps_mean_grade") == "output tokens/s mean grade"
    assert header("ttft_p50_ms") == "TTFT p50 (ms)" and header("run_id") == "run id"
    assert [number(v) for v in (211.163, 12.345, 0.09575, 1234567, 0.0, 3.0)] == [
        "211", "12.3", "0.0958", "1,234,567", "0", "3.00"]
    assert short_name("a/x/c", ["a/x/c", "a/y/c"]) == "x"
    assert shared_parts(["a/x/c", "a/y/c"]) == "a/…/c"
    assert clip("x" * 50) == "x" * 37 + "…"


def test_error_only_runs_say_so(tmp_path: Path) -> None:
    r = tmp_path / "results"
    write_requests(r, "err001", "0000", [err("err001", DIRECT), err("err001", DIRECT)])
    write_run(r, "err001", T0)
    md = report_command(r, None, None, tmp_path / "e.html", None)
    assert "**No successful measured requests in these runs" in md
    assert "| err001 | " + DIRECT + " | F |" in md
    page = (tmp_path / "e.html").read_text()
    assert page.count("no data") == 6 and "<script" not in page
    with pytest.raises(ConfigError, match="--latest"):
        report_command(r, None, 0, None, None)


# ---------------------------------------------------------------- in a real browser


def render(page: Path, shot: Path, profile: Path) -> str:
    """Open ``page`` in headless Chromium with a fresh profile; return its stderr log."""
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}",
                           "--window-size=1400,4400", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    return done.stderr


def drawn_dom(page: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran (plotly adds an <svg class="main-svg">)."""
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}",
                           "--window-size=1400,1000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def console_messages(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def drawn_pixels(shot: Path) -> dict[str, int]:
    """How many screenshot pixels have each of the first four series colours."""
    from PIL import Image

    colours = [*plots.PALETTE[:2], *plots.PHASE_COLORS[2:4]]
    wanted = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)): c for c in colours}
    counts = dict.fromkeys(wanted.values(), 0)
    with Image.open(shot) as image:
        for count, rgb in image.convert("RGB").getcolors(maxcolors=1 << 24) or []:
            if rgb in wanted:
                counts[wanted[rgb]] += count
    return counts


@pytest.mark.optional
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y "
                    "chromium; .ci/run installs it)")
def test_html_report_renders_in_chromium(tmp_path: Path) -> None:
    pytest.importorskip("PIL", reason="pillow (test extra) reads the screenshot")
    bad = tmp_path / "bad.html"  # the checker itself: it must see a console error
    bad.write_text("<html><body><script>console.error('boom')</script></body></html>")
    assert console_messages(render(bad, tmp_path / "bad.png", tmp_path / "p0"))
    page = tmp_path / "report.html"
    report_command(interleaved(tmp_path), None, None, page, None)
    log = render(page, tmp_path / "shot.png", tmp_path / "p1")
    assert console_messages(log) == []
    dom = drawn_dom(page, tmp_path / "p3")
    drawn = re.findall(r'<div class="plot[^"]*" id="plot-\d"', dom)
    assert len(drawn) == 7 and dom.count('class="main-svg"') >= 14, dom[-500:]
    counts = drawn_pixels(tmp_path / "shot.png")
    # two cells: series colours 1 and 2 are drawn (lines, boxes, points); the budget's
    # first-token and generation bars, phase colours 3 and 4
    assert all(count > 300 for count in counts.values()), counts
    blank = tmp_path / "blank.html"  # and a page without plots has none of those pixels
    blank.write_text("<html><body><p>no plots</p></body></html>")
    render(blank, tmp_path / "blank.png", tmp_path / "p2")
    assert sum(drawn_pixels(tmp_path / "blank.png").values()) == 0
