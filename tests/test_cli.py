"""The ``latlab`` command: every command has help and is documented; the emulator serves."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from latlab.runner.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
                  ) -> list[tuple[str, ...]]:
    """Every (sub)command of the parser, e.g. ("emulator", "serve")."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found += command_paths(sub, (*prefix, name))
    return found


COMMANDS = command_paths(build_parser())


def test_there_are_commands() -> None:
    assert ("run",) in COMMANDS and ("emulator", "serve") in COMMANDS and ("grade",) in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_command_is_in_the_readme(command: tuple[str, ...]) -> None:
    assert f"latlab {' '.join(command)}" in README


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != ("run",)],
                         ids=[" ".join(c) for c in COMMANDS if c != ("run",)])
def test_every_command_has_help(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
                                ) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: latlab " + " ".join(command)) and len(out) > 100
    assert "%%" not in out  # a description is printed as written: "%" needs no escape


def test_run_help_is_latlabs_own_with_the_groups() -> None:
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    out = done.stdout
    assert out.startswith("latlab run: run one latency experiment") and "Hydra" in out
    assert "powered by Hydra" not in out and "== Config ==" not in out  # not Hydra's own
    assert "model: gemma3-270m, haiku-4-5," in out and "experiment: agent_sessions," in out
    for part in ("workload.iterations", "++matrix.AXIS=[a,b]", "-m GROUP=a,b",
                 "--experiments-dir DIR", "--cfg job", "docs/columns.md"):
        assert part in out
    assert out.count("\n  latlab run ") + out.count("\nlatlab run ") >= 3  # examples
    assert len(out.splitlines()) < 70


def test_run_help_examples_compose(tmp_path: Path) -> None:
    """The matrix example of `latlab run --help` composes (--cfg job sends nothing)."""
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "--cfg", "job",
                           "++matrix.model=[haiku-4-5,sonnet-4-5]", "++matrix.prompt=[short,long]"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "matrix:\n  model:\n  - haiku-4-5\n  - sonnet-4-5\n  prompt:" in done.stdout


def test_sql_help_lists_every_view(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["sql", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "SHOW TABLES" in out
    for view in ("requests", "cells", "grades", "budget", "budget_delta", "comparison",
                 "advice", "tool_timings", "report_boxes"):
        assert f" {view}," in out or out.endswith(f" {view}")


def test_help_starts_without_duckdb_pyarrow_or_the_emulator() -> None:
    """`latlab --help` imports only the command line (the commands import the rest)."""
    code = ("import sys; from latlab.runner.app.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('duckdb', 'pyarrow', 'aiohttp', 'hydra', 'rich', "
            "'latlab.providers.emulator') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_readme_starts_with_the_quick_start() -> None:
    first_screen = "\n".join(README.splitlines()[:12])
    assert "pip install -e . && latlab run" in first_screen
    assert "pip install -e '.[test]' && pytest" in first_screen
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && pytest" in ci


def test_emulator_serve_prints_its_url_first_and_benchmarks_against_it(tmp_path: Path) -> None:
    server = subprocess.Popen([sys.executable, "-m", "latlab", "emulator", "serve",
                               "--port", "0", "--ttft-ms", "10", "--itl-ms", "1"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        done = subprocess.run(
            [sys.executable, "-m", "latlab", "run", "provider=anthropic",
             f"provider.base_url={url}", "workload.iterations=2", "workload.warmup=0"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "anthropic/haiku-4-5/count20/none/stream" in done.stdout, done.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
