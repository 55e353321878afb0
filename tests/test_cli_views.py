"""The analysis and check commands (analysis/cli.py, runner/app/cli.py) end to end through
``latlab``'s parser: output, the results directory, bad input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latlab.runner.app.cli import main
from tests.test_budget import make_budget_results
from tests.test_compare import make_compare_results


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_budget_and_compare_print_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    budget = make_budget_results(tmp_path / "b")
    code, out, _ = run(["budget", "--results", str(budget), "--format", "json"], capsys)
    assert code == 0 and len(json.loads(out)) == 3
    results = make_compare_results(tmp_path / "c")
    code, out, _ = run(["compare", str(results), "base01", "slow02", "--metric", "ttft_ms",
                        "--format", "json"], capsys)
    assert code == 0
    (row,) = json.loads(out)
    assert (row["verdict"], row["delta_p50"]) == ("slower", 200.0)


@pytest.mark.parametrize("argv, message", [
    (["compare", "base01"], "compare needs at least 2 runs (got 1)"),
    (["compare", "--latest", "0"], "--latest: must be at least 1, got 0"),
    (["compare", "base01", "zzz"], "unknown run id 'zzz'"),
    (["budget", "--stat", "p42"], "--stat: unknown statistic 'p42'"),
    (["compare", "--detect", "-1"], "--detect: must be a share between 0 and 10"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    results = make_compare_results(tmp_path)
    code, out, err = run([*argv, "--results", str(results)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("latlab: error: ") and message in err and err.count("\n") == 1


def test_unknown_format_is_rejected_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["budget", "--format", "xml"], capsys)
    assert code == 2 and "invalid choice: 'xml'" in err
