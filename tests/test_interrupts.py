"""Interrupts and a full disk, through the real ``latlab`` console script:

- Ctrl-C at any moment while latlab starts (imports, checks, Hydra, the emulator): one line,
  exit 130, no traceback, nothing left behind;
- the resume command Ctrl-C prints pastes back as printed (a run_name with a space, a
  user's --experiments-dir) and finishes the run;
- a disk that fills while Hydra writes its .hydra files (RLIMIT_FSIZE): one line, exit 2.
"""

from __future__ import annotations

import resource
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from result_files import run_rows, wait_for_request_files

LATLAB = str(Path(sys.executable).with_name("latlab"))


@pytest.mark.parametrize("delay_s", [0.1, 0.3, 0.7, 1.2, 2.0])
def test_ctrl_c_while_starting_is_one_line(tmp_path: Path, delay_s: float) -> None:
    proc = subprocess.Popen([LATLAB, "run", "workload.iterations=400", "profile=fast"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if "Traceback" in err and "runner/app/cli.py" not in err:
        return  # before latlab's first lines ran (Python's site, the script's own imports)
    lines = [line for line in err.splitlines() if line.startswith("latlab: ")]
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert lines and "interrupted" in lines[-1], err
    if "before the first request" in err or lines == ["latlab: interrupted"]:
        assert not list(tmp_path.rglob("*.yaml")), "a refused start left Hydra's files"


@pytest.mark.slow
def test_the_printed_resume_command_pastes_back(tmp_path: Path) -> None:
    (tmp_path / "my exps").mkdir()
    (tmp_path / "my exps" / "mine.yaml").write_text(
        "# @package _global_\nmatrix:\n  model: [haiku-4-5, sonnet-4-5]\n")
    args = [LATLAB, "run", "--experiments-dir", "my exps", "experiment=mine",
            "run_name=my run", "workload.iterations=30", "workload.warmup=0",
            "profile=fast", "profile.models.default.ttft_ms.median=150"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_for_request_files(tmp_path / "results", timeout_s=60)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    hint = err.split("continue with: ")[1].strip()
    argv = shlex.split(hint)
    assert argv[:2] == ["latlab", "run"] and "run_name=my run" in argv
    done = subprocess.run([LATLAB, *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = run_rows(tmp_path / "results")
    assert run["status"] == "finished" and run["resumes"] == 1 and run["requests"] == 60


def fill_at(limit_bytes: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails: EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))


@pytest.mark.parametrize("limit_bytes", [0, 200, 3000])
def test_a_full_disk_while_hydra_writes_is_one_line(tmp_path: Path, limit_bytes: int) -> None:
    done = subprocess.run([LATLAB, "run", "workload.iterations=2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: fill_at(limit_bytes))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("latlab: error: ") and "Traceback" not in done.stderr
    assert not (tmp_path / "results").exists()
