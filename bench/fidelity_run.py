"""Timing fidelity of the path users run: ``latlab run`` end to end against a known schedule.

    python bench/fidelity_run.py [--levels 1,16,64,200] [--waves 20] [--repeats 1]
        [--checkout LABEL=DIR ...] [--override KEY=VALUE ...] [--json FILE]
        [--peer NAME=EXECUTABLE ...]

The emulator runs standalone (``bench/emulator_accepts.py``: the emulator's own command line
plus a log of the connections it accepts; pinned to core 1) with
a fixed schedule: headers after 5 ms, the first content token 150 ms after it received the request,
then one token every 10 ms, 50 tokens (sigma 0). For each level C the real CLI runs as a
subprocess pinned to core 0::

    latlab run provider=openai_compat provider.base_url=EMULATOR workload.concurrency=C
        workload.iterations=WAVES*C workload.max_tokens=1000 results_dir=TMP

(through ``python -c 'from latlab.runner.app.cli import main; main()'`` with
``PYTHONPATH=DIR``, so a
``--checkout before=/tmp/base`` export of another commit runs side by side with this one,
order rotated per repeat). Its Parquet rows and run record are then read back, and the figures
of ``bench/fidelity_figures.py`` computed from them:

- TTFT error = ``ttft_ms`` − (150 ms + the emulator's median send lag of the run); overall
  (every measured row) and steady (rows that did not open a connection);
- gap error = |gap − 10 ms| over every inter-token gap of the measured rows (p99);
- CPU µs/token = the client process tree's utime+stime (+ reaped children; ``/proc/PID/stat``,
  sampled every 20 ms, interpolated) from its first request's start to its last request's
  end, over the content tokens received in that span (warm-up rows included: they are in
  the span);
- loop lag p99/max: the run record (runner/engine/lag.py's ticker);
- streams held: mean requests in flight between the first and the last measured send.

The emulator's own send lag (p50/p99), the connections it accepted during the run
(``server_accepts``, warm-up included) and /proc/loadavg are reported with every figure.

``--peer NAME=EXECUTABLE`` (repeatable; NAME one of ``guidellm``, ``inference-perf``,
``aiperf``, each installed in its own venv by ``bench/install_peers.sh``) runs that load tool
too, at the same levels, in the same invocation, against the same emulator: pinned to core 0,
closed loop at C streams, C warm-up requests then WAVES·C measured, with an offline
tokenizer (``bench/peer_tokenizer.py``) built by the peer's own interpreter. Its own
per-request export is read back (``bench/peer_<name>.py``, which cite the peer's source for
every field) and scored with the same code; loop lag is n/a for peers. The order of the
tools (checkouts, then peers) is rotated per repeat. A peer that fails prints why and the
invocation goes on.
``bench/fidelity.py`` is the provider-only lower bound (no CLI, writer or progress display).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import peer_aiperf
import peer_guidellm
import peer_inference_perf
import pyarrow.parquet as pq
from emulator_process import ROOT, emulator_process
from fidelity_figures import (
    ITL_MS,
    TOKENS,
    TTFB_MS,
    TTFT_MS,
    Context,
    CpuTrace,
    Peer,
    Req,
    RunResult,
    goal,
    mark_new_connections,
    medians,
    read_accepts,
    score,
    table,
)
from peer_tokenizer import build_tokenizer

PROFILE_ARGS = ["--ttfb-ms", f"{TTFB_MS:g}", "--ttft-ms", f"{TTFT_MS:g}",
                "--itl-ms", f"{ITL_MS:g}", "--output-tokens", str(TOKENS)]
CLIENT_CORE, EMULATOR_CORE = "0", "1"
SAMPLE_S = 0.02
RUN_TIMEOUT_S = 300.0
PEER_TIMEOUT_S = 600.0  # a peer's start-up (processes, imports, tokenizing) is included
CLI = "import sys; from latlab.runner.app.cli import main; sys.argv[0] = 'latlab'; main()"
PEERS: dict[str, Peer] = {p.name: p for p in (peer_guidellm.PEER, peer_inference_perf.PEER,
                                               peer_aiperf.PEER)}


def http(base: str, path: str, post: bool = False) -> Any:
    req = urllib.request.Request(base + path, method="POST" if post else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def emulator(python: str, accepts: Path) -> AbstractContextManager[str]:
    """The standalone emulator on its own core, logging its accepts; yields its base URL."""
    return emulator_process(PROFILE_ARGS, python, prefix=("taskset", "-c", EMULATOR_CORE),
                            entry=(str(ROOT / "bench" / "emulator_accepts.py"), str(accepts)))


def cli_command(python: str, base: str, level: int, waves: int, results: Path,
                overrides: Sequence[str]) -> list[str]:
    return ["taskset", "-c", CLIENT_CORE, python, "-c", CLI, "run",
            "provider=openai_compat", f"provider.base_url={base}",
            f"workload.concurrency={level}", f"workload.iterations={waves * level}",
            "workload.max_tokens=1000", f"results_dir={results}", *overrides]


def run_sampled(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float,
                log: Path) -> tuple[CpuTrace, int]:
    """Run ``cmd`` to its end (output to ``log``), sampling its process tree's CPU time."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        trace = CpuTrace(proc.pid)
        sampler = threading.Thread(target=_sample_until_exit, args=(trace, proc), daemon=True)
        sampler.start()
        try:
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sampler.join()
    return trace, proc.returncode


def _sample_until_exit(trace: CpuTrace, proc: subprocess.Popen[bytes]) -> None:
    while proc.poll() is None and trace.sample():
        time.sleep(SAMPLE_S)


def read_rows(results: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The run's request rows and its run record."""
    (run_file,) = (results / "runs").glob("*.parquet")
    run = pq.read_table(run_file).to_pylist()[0]
    rows = pq.read_table(results / "requests" / run["run_id"]).to_pylist()
    return rows, run


def row_req(row: dict[str, Any]) -> Req:
    """One of latlab's request rows as a ``Req``."""
    start = float(row["started_at"].timestamp())
    gaps = tuple(row["itl_ms"] or ())
    ttft = row["ttft_ms"]
    return Req(start_s=start, end_s=start + (row["total_ms"] or 0.0) / 1000, ttft_ms=ttft,
               gaps_ms=gaps, mean_gap_ms=None, tokens=len(gaps) + 1 if ttft is not None else 0,
               ok=row["error_type"] is None, warmup=bool(row["warmup"]),
               new_connection=bool(row["new_connection"]))


@dataclass(frozen=True)
class Setting:
    """What every run of one invocation shares."""

    base: str
    accepts: Path
    waves: int
    overrides: Sequence[str]


def fresh(setting: Setting) -> None:
    """Zero the emulator's counters and its accept log before a run."""
    http(setting.base, "/_latlab/stats/reset", post=True)
    setting.accepts.write_text("")


def measure(setting: Setting, checkout: tuple[str, Path], level: int) -> RunResult:
    """One ``latlab run`` at ``level`` streams, read back and scored."""
    label, folder = checkout
    with tempfile.TemporaryDirectory(prefix="fidelity-run-") as tmp:
        fresh(setting)
        cmd = cli_command(sys.executable, setting.base, level, setting.waves, Path(tmp),
                          setting.overrides)
        env = {**os.environ, "PYTHONPATH": str(folder), "COLUMNS": "120"}
        wall0 = time.perf_counter()
        trace, code = run_sampled(cmd, folder, env, RUN_TIMEOUT_S, Path(tmp) / "log")
        wall_s = time.perf_counter() - wall0
        if code != 0:
            tail = (Path(tmp) / "log").read_text()[-3000:]
            raise RuntimeError(f"latlab run failed ({code}):\n{tail}")
        accepts = len(read_accepts(setting.accepts))  # before our own request for the stats
        server = http(setting.base, "/_latlab/stats")
        rows, run = read_rows(Path(tmp))
    lag = (float(run.get("loop_lag_p99_ms") or math.nan),
           float(run.get("loop_lag_max_ms") or math.nan))
    ctx = Context(label, level, "per gap", server, lag, wall_s, accepts)
    return score([row_req(r) for r in rows], trace, ctx)


def measure_peer(setting: Setting, peer: tuple[Peer, str, Path], level: int) -> RunResult:
    """One peer run at ``level`` streams, its own export read back and scored alike."""
    spec, exe, tokenizer = peer
    with tempfile.TemporaryDirectory(prefix=f"fidelity-{spec.name}-") as tmp:
        fresh(setting)
        argv, extra = spec.command(exe, setting.base, level, setting.waves, Path(tmp), tokenizer)
        env = {**os.environ, **extra}
        log = Path(tmp) / "peer.log"
        wall0 = time.perf_counter()
        trace, code = run_sampled(["taskset", "-c", CLIENT_CORE, *argv], Path(tmp), env,
                                  PEER_TIMEOUT_S, log)
        wall_s = time.perf_counter() - wall0
        if code != 0:
            raise RuntimeError(f"{spec.name} failed ({code}): {log.read_text()[-1500:]}")
        accepts = read_accepts(setting.accepts)  # before our own request for the stats
        server = http(setting.base, "/_latlab/stats")
        reqs = spec.read(Path(tmp))
    if spec.needs_accepts:
        reqs = mark_new_connections(reqs, accepts)
    ctx = Context(spec.name, level, spec.gaps, server, wall_s=wall_s, accepts=len(accepts))
    return score(reqs, trace, ctx)


def emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_checkouts(specs: Sequence[str]) -> list[tuple[str, Path]]:
    if not specs:
        return [("latlab", ROOT)]
    return [(label, Path(folder).resolve())
            for label, _, folder in (s.partition("=") for s in specs)]


def parse_peers(specs: Sequence[str], tokenizers: Path) -> list[tuple[Peer, str, Path]]:
    """``NAME=EXECUTABLE`` → (peer, executable, an offline tokenizer its venv built)."""
    out = []
    for name, _, exe in (s.partition("=") for s in specs):
        if name not in PEERS or not exe:
            sys.exit(f"--peer {name}={exe}: expected NAME=EXECUTABLE with NAME one of "
                     f"{', '.join(PEERS)}")
        python = str(Path(exe).parent / "python")
        out.append((PEERS[name], exe, build_tokenizer(tokenizers / name, python)))
    return out


Tool = tuple[str, Path] | tuple[Peer, str, Path]  # a latlab checkout, or a peer


def run_tool(setting: Setting, tool: Tool, level: int) -> list[RunResult]:
    """One tool at one level; a failing peer is reported and yields nothing."""
    if len(tool) == 2:
        return [measure(setting, tool, level)]
    try:
        return [measure_peer(setting, tool, level)]
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        sys.stderr.write(f"fidelity_run: {tool[0].name} at {level} streams: {exc}\n")
        return []


def one_level(setting: Setting, level: int, turn: Sequence[Tool]) -> list[RunResult]:
    """Every tool at one level, in ``turn``'s order (rotated per repeat)."""
    done = [result for tool in turn for result in run_tool(setting, tool, level)]
    for result in done:
        emit(table([result]).splitlines()[-1])
    return done


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,16,64,200")
    parser.add_argument("--waves", type=int, default=20, help="requests per stream")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--checkout", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Hydra override for every latlab run")
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=EXECUTABLE",
                        help=f"also run a peer load tool ({', '.join(PEERS)})")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    checkouts = parse_checkouts(args.checkout)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        peers = parse_peers(args.peer, Path(tmp))
        accepts = Path(tmp) / "accepts.log"
        with emulator(sys.executable, accepts) as base:
            setting = Setting(base, accepts, args.waves, args.override)
            tools: list[Tool] = [*checkouts, *peers]
            for repeat in range(args.repeats):
                turn = tools[repeat % len(tools):] + tools[:repeat % len(tools)]
                for level in (int(x) for x in args.levels.split(",")):
                    results += one_level(setting, level, turn)
    emit("\nall runs:\n" + table(results))
    summary = medians(results)
    if args.repeats > 1:
        emit(f"\nmedians of {args.repeats} repeats:\n" + table(summary))
    if peers:
        emit("\ngoal (issue 18), per level:\n" + "\n".join(goal(summary, checkouts[0][0])))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
