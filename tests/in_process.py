"""``latlab ARGS`` called in this process, through the CLI's own parser, Hydra app and error
handling (``latlab.runner.app.cli.main``): for tests where a subprocess would only add
Python's start-up and imports (~1 s of CPU a call) to what they assert. Tests of what only a
process shows (Ctrl-C, kill, exit codes of the interpreter, the environment, worker
processes, the embedded emulator's share of the process) and at least one test per promise
still run the real ``python -m latlab`` (tests/test_run.py and others)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from latlab.runner.app.cli import main


def latlab_here(argv: Sequence[str], capsys: pytest.CaptureFixture[str],
                cwd: Path | None = None) -> CompletedProcess[str]:
    """What ``python -m latlab ARGV`` (run in ``cwd``) returns: exit code, stdout, stderr."""
    capsys.readouterr()  # only this command's output
    before, argv_before = Path.cwd(), list(sys.argv)  # Hydra's app sets sys.argv
    if cwd is not None:
        os.chdir(cwd)
    try:
        main(list(argv))
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        os.chdir(before)
        sys.argv[:] = argv_before
    out, err = capsys.readouterr()
    return CompletedProcess(["latlab", *argv], code, out, err)
