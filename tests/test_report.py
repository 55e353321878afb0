"""``latlab report``: Markdown and a self-contained HTML file, the HTML opened in headless
Chromium (Debian's package): no console errors, and the screenshot shows the plots."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis import svg
from analysis.report import report_command
from runner.errors import ConfigError
from tests.test_analysis import T0, err, write_requests, write_run
from tests.test_budget import BEDROCK, DIRECT, make_budget_results
from tests.test_compare import make_compare_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]


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


def test_html_is_self_contained_with_six_charts(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    note = report_command(make_budget_results(tmp_path), ["bud"], None, out, tmp_path / "r.md")
    assert note == f"Markdown report -> {tmp_path / 'r.md'}\nHTML report -> {out}"
    page = out.read_text()
    assert page.count("<svg ") == 6
    assert page.count("no data") == 1  # tokens/s: the fixture's rows have no output_tps
    for forbidden in ("<script", "src=", "href=", "url(", "@import", "https://"):
        assert forbidden not in page
    assert set(re.findall(r"http://[^\"']+", page)) == {"http://www.w3.org/2000/svg"}
    assert BEDROCK in page and "first_token" in page


def test_error_only_runs_say_so(tmp_path: Path) -> None:
    r = tmp_path / "results"
    write_requests(r, "err001", "0000", [err("err001", DIRECT), err("err001", DIRECT)])
    write_run(r, "err001", T0)
    md = report_command(r, None, None, tmp_path / "e.html", None)
    assert "**No successful measured requests in these runs" in md
    assert "| err001 | " + DIRECT + " | F |" in md
    assert (tmp_path / "e.html").read_text().count("no data") == 6
    with pytest.raises(ConfigError, match="--latest"):
        report_command(r, None, 0, None, None)


def test_nice_ticks() -> None:
    assert svg.nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert svg.nice_ticks(103, 139, 4) == [110, 120, 130]


# ---------------------------------------------------------------- in a real browser


def render(page: Path, shot: Path, profile: Path) -> str:
    """Open ``page`` in headless Chromium with a fresh profile; return its stderr log."""
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}",
                           "--window-size=1000,2600", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    return done.stderr


def console_messages(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def drawn_pixels(shot: Path) -> dict[str, int]:
    """How many screenshot pixels have each of the first four series colours."""
    from PIL import Image

    wanted = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)): c for c in svg.PALETTE[:4]}
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
    report_command(make_compare_results(tmp_path), ["mixed5"], None, page, None)
    log = render(page, tmp_path / "shot.png", tmp_path / "p1")
    assert console_messages(log) == []
    counts = drawn_pixels(tmp_path / "shot.png")
    # two cells: series colours 1 and 2 are drawn (lines, boxes, points); the budget bars
    # use the phase colours 1 to 4
    assert all(counts[c] > 300 for c in svg.PALETTE[:2]), counts
    assert counts[svg.PALETTE[2]] > 0 and counts[svg.PALETTE[3]] > 0, counts
    blank = tmp_path / "blank.html"  # and a page without plots has none of those pixels
    blank.write_text("<html><body><p>no plots</p></body></html>")
    render(blank, tmp_path / "blank.png", tmp_path / "p2")
    assert sum(drawn_pixels(tmp_path / "blank.png").values()) == 0
