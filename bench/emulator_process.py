"""The emulator in its own process, for benchmarks: ``with emulator_process(args) as base_url``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIDS: dict[str, int] = {}  # base URL -> process id, while the process runs


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/PID/stat``, Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def emulator_process(args: Sequence[str], python: str = sys.executable,
                     prefix: Sequence[str] = (),
                     entry: Sequence[str] = ("-m", "latlab.providers.emulator")) -> Iterator[str]:
    """``[PREFIX] python ENTRY --port 0 ARGS`` (a prefix such as ``taskset -c 1`` pins it;
    ENTRY another script that ends in the emulator's command line, e.g.
    ``bench/emulator_accepts.py LOG``); yields its URL, stops it after."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [*prefix, python, *entry, "--port", "0", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        base = proc.stdout.readline().strip()
        if not base.startswith("http://"):
            raise RuntimeError(f"emulator did not start (first line: {base!r})")
        PIDS[base] = proc.pid
        try:
            yield base
        finally:
            PIDS.pop(base, None)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
