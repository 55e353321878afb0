"""How much load does latlab drive while its timings stay true?

Starts the emulator in its own process(es) (``python -m latlab.providers.emulator`` with a fixed
profile: TTFB 5 ms, TTFT 150 ms, ITL 10 ms, 50 tokens), runs ``latlab run`` against it at
rising load (open loop at the rate that keeps N streams in flight) with 1 and 2 worker
processes, and compares what latlab measured with the known truth: TTFT error =
``ttft_ms`` − 150, inter-token error = |gap − 10| over every gap. The emulator's own send
lag (``/_latlab/stats``) is reported beside it, so a late server is not blamed on the
client. ``--peer PATH`` (a ``guidellm`` executable, in its own venv) runs GuideLLM against the
same emulator's ``/v1/chat/completions`` at the same concurrency levels, after latlab's rows,
and adds its rows (tool ``guidellm``) to the same table (bench/guidellm_peer.py).

    python bench/load.py --streams 50 100 200 300 400 --workers 1 2 --seconds 8
    python bench/load.py --emulators 2 ...           # two emulator processes, one per cell
    python bench/load.py --backend ray --workers 1 2 ...  # N Ray actors (a local Ray instance
                                                     # of this machine's cores, or --ray-address)
    python bench/load.py --streams 50 100 200 --workers 1 --seconds 8 \
        --peer /work/peers-venv/bin/guidellm

Every level prints one row; a level "passes" when TTFT and inter-token error p99 are both
within ``--max-error-ms`` (5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from emulator_process import PIDS, cpu_seconds, emulator_process
from guidellm_peer import guidellm_command, run_guidellm, summarize
from peer_tokenizer import build_tokenizer

TTFB_MS, TTFT_MS, ITL_MS, TOKENS = 5.0, 150.0, 10.0, 50
PROFILE_ARGS = ["--ttfb-ms", str(TTFB_MS), "--ttft-ms", str(TTFT_MS), "--itl-ms", str(ITL_MS),
                "--output-tokens", str(TOKENS)]
STREAM_S = (TTFT_MS + (TOKENS - 1) * ITL_MS) / 1000


@dataclass
class Level:
    """One measured load level."""

    tool: str
    workers: int
    concurrency: int
    requests: int
    tokens_per_s: float
    ttft_err_p50: float
    ttft_err_p99: float
    itl_err_p99: float | None
    server_lag_p99: float
    late_share: float | None
    loop_lag_p99: float | None
    cpu_pct: float | None
    errors: int
    flagged: str = "-"
    emu_us_per_token: float | None = None  # emulator process CPU per streamed token (µs)
    emu_cpu_pct: float | None = None  # emulator process CPU over the streaming span

    def passes(self, limit_ms: float) -> bool:
        return self.ttft_err_p99 <= limit_ms and (self.itl_err_p99 or 0.0) <= limit_ms


def emulator(spin_margin_us: float | None = None) -> AbstractContextManager[str]:
    """One emulator process; yields its base URL."""
    spin = [] if spin_margin_us is None else ["--spin-margin-us", f"{spin_margin_us:g}"]
    return emulator_process([*PROFILE_ARGS, *spin])


def http(url: str, body: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read() or b"null")


def reset_servers(bases: list[str]) -> None:
    for base in bases:
        http(f"{base}/_latlab/stats/reset", b"")


def server_lag_p99(bases: list[str]) -> float:
    return max(float(http(f"{base}/_latlab/stats")["lag_ms"]["p99"] or 0.0) for base in bases)


def latlab_args(bases: list[str], workers: int, streams: int, seconds: float,
                results: Path, closed: bool = False) -> list[str]:
    """``latlab run`` overrides for one level: open loop at the rate that keeps ``streams``
    streams in flight (arrivals evenly spread, so completions do not come in waves), for
    ``seconds``, after one stream's length of warm-up (connections opened, not measured).
    ``closed``: closed loop at ``workload.concurrency=streams`` instead (each slot sends its
    next request when the last ends, as GuideLLM's ``concurrent`` profile does)."""
    rate = streams / STREAM_S
    per_cell = round(rate * seconds / len(bases))
    warmup = math.ceil(streams / len(bases))
    pace = ([f"workload.concurrency={streams}"] if closed else
            [f"workload.rate={rate:.3f}", "workload.max_in_flight=100000"])
    args = ["emulate=false", f"provider.base_url={bases[0]}", f"results_dir={results}",
            f"workload.warmup={warmup}", f"workload.iterations={per_cell}", *pace,
            f"workload.workers={workers}", "workload.max_tokens=128",
            "hydra/job_logging=none", "hydra/hydra_logging=none"]
    if len(bases) > 1:
        args.append(f"++matrix.provider.base_url=[{','.join(bases)}]")
    return args


ROW_SQL = f"""
WITH r AS (SELECT * FROM read_parquet(?) WHERE NOT warmup),
g AS (SELECT abs(unnest(itl_ms) - {ITL_MS}) AS e FROM r WHERE error_type IS NULL)
SELECT count(*), sum(output_tokens) / ((max(epoch_ms(started_at) + total_ms)
         - min(epoch_ms(started_at))) / 1000.0),
       sum(total_ms) / (max(epoch_ms(started_at) + total_ms) - min(epoch_ms(started_at))),
       quantile_cont(ttft_ms - {TTFT_MS}, 0.5), quantile_cont(ttft_ms - {TTFT_MS}, 0.99),
       (SELECT quantile_cont(e, 0.99) FROM g), avg(client_late::INT),
       count(*) FILTER (WHERE error_type IS NOT NULL)
FROM r"""


ALL_SQL = """SELECT sum(output_tokens), (max(epoch_ms(started_at) + total_ms)
  - min(epoch_ms(started_at))) / 1000.0 FROM read_parquet(?)"""  # warm-up rows included


def servers_cpu_s(bases: list[str]) -> float:
    """CPU seconds used so far by the emulator processes (0 if not started here)."""
    return sum(cpu_seconds(PIDS[base]) for base in bases if base in PIDS)


def emulator_cost(cpu_s: float, files: list[str]) -> tuple[float | None, float | None]:
    """The emulators' CPU per streamed token (µs) and share of a core over the streaming
    span, warm-up included (the CPU was measured over the whole run; it idles outside)."""
    tokens, span_s = duckdb.execute(ALL_SQL, [files]).fetchone() or (None, None)
    if not tokens or not span_s:
        return None, None
    return cpu_s / tokens * 1e6, 100 * cpu_s / span_s


@contextmanager
def local_ray() -> Iterator[str]:
    """A local Ray instance of this machine's cores, for every level; its address."""
    import ray

    context = ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                       object_store_memory=128 * 2**20, logging_level="WARNING")
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


def ray_args(args: argparse.Namespace, stack: ExitStack) -> list[str]:
    """``--backend ray``: the overrides that run the workers as actors on one cluster."""
    if args.backend != "ray":
        return []
    address = stack.enter_context(nullcontext(args.ray_address) if args.ray_address
                                  else local_ray())
    return ["workload.backend=ray", f"workload.ray.address={address}"]


def measure_latlab(bases: list[str], workers: int, target: int, seconds: float,
                   loop: str = "open", extra: list[str] | None = None) -> Level:
    closed = loop == "closed"
    extra = extra or []
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        reset_servers(bases)
        cpu0 = servers_cpu_s(bases)
        done = subprocess.run([sys.executable, "-m", "latlab", "run",
                               *latlab_args(bases, workers, target, seconds, results, closed),
                               *extra],
                              cwd=tmp, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"latlab run failed: {done.stderr[-2000:]}")
        lag = server_lag_p99(bases)
        files = [str(p) for p in results.glob("requests/*/*.parquet")]
        emu = emulator_cost(servers_cpu_s(bases) - cpu0, files)
        n, tps, streams, p50, p99, itl, late, errors = (
            duckdb.execute(ROW_SQL, [files]).fetchone() or ())
        run = duckdb.execute("SELECT loop_lag_p99_ms, client_cpu_pct FROM read_parquet(?)",
                             [str(next(results.glob("runs/*.parquet")))]).fetchone() or ()
    flagged = "bottleneck" if "client was the bottleneck" in done.stderr else "none"
    tool = ("latlab-cl" if closed else "latlab") + ("-ray" if extra else "")
    return Level(tool, workers, round(streams), n, tps, p50,
                 p99, itl, lag, late, run[0], run[1], errors, flagged, *emu)


def has_chat_endpoint(base: str) -> bool:
    body = json.dumps({"model": "m", "max_tokens": 5,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"{base}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json",
                                              "authorization": "Bearer dummy"})
    try:
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - 127.0.0.1 only
            return True
    except OSError:
        return False


HEADER = (f"{'tool':<11}{'workers':>8}{'streams':>8}{'reqs':>7}{'tok/s':>9}{'ttft err':>9}"
          f"{'ttft err':>9}{'itl err':>8}{'server':>8}{'late':>7}{'loop lag':>9}{'cpu':>6}"
          f"{'err':>5}{'emu':>7}{'emu':>6}  pass  flagged\n"
          f"{'':<43}{'p50 ms':>9}{'p99 ms':>9}{'p99 ms':>8}{'lag p99':>8}"
          f"{'share':>7}{'p99 ms':>9}{'%':>6}{'':>5}{'µs/tok':>7}{'%':>6}\n")


def fmt(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def line(level: Level, limit_ms: float) -> str:
    return (f"{level.tool:<11}{level.workers:>8}{level.concurrency:>8}{level.requests:>7}"
            f"{level.tokens_per_s:>9.0f}{fmt(level.ttft_err_p50, 9)}{fmt(level.ttft_err_p99, 9)}"
            f"{fmt(level.itl_err_p99, 8)}{fmt(level.server_lag_p99, 8)}"
            f"{fmt(level.late_share, 7)}{fmt(level.loop_lag_p99, 9)}{fmt(level.cpu_pct, 6, 0)}"
            f"{level.errors:>5}{fmt(level.emu_us_per_token, 7, 1)}{fmt(level.emu_cpu_pct, 6, 0)}"
            f"  {'yes' if level.passes(limit_ms) else 'NO':<4}  "
            f"{level.flagged}\n")


def measure_peer(exe: str, base: str, tokenizer: Path, workers: int, streams: int,
                 seconds: float) -> Level:
    """One GuideLLM level against the same emulator, with the same truth."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "guidellm.json"
        reset_servers([base])
        peer = run_guidellm(guidellm_command(exe, base, tokenizer, streams, seconds, TOKENS,
                                             report), workers, seconds, report)
        lag = server_lag_p99([base])
    s = summarize(peer, TTFT_MS, ITL_MS)
    return Level("guidellm", workers, round(s.streams), s.requests, s.tokens_per_s,
                 s.ttft_err_p50, s.ttft_err_p99, s.itl_err_p99, lag, None, None, None,
                 peer.errored, peer.flags())


def run_peer(args: argparse.Namespace, base: str, out: Any) -> None:
    """GuideLLM at every (workers, streams) level, after a local tokenizer is built with the
    peer's own interpreter; its rows go to the same table."""
    if not has_chat_endpoint(base):
        out.write("peer: the emulator has no /v1/chat/completions (OpenAI) endpoint: "
                  "peer comparison not run\n")
        return
    python = str(Path(args.peer).with_name("python"))
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp) / "tokenizer", python)
        for workers in args.peer_workers or args.workers:
            for target in args.streams:
                level = measure_peer(args.peer, base, tokenizer, workers, target, args.seconds)
                out.write(line(level, args.max_error_ms))
                out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[50, 100, 200, 300, 400],
                        help="target streams in flight (open loop at streams / 0.64 s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=8.0, help="streaming time per level")
    parser.add_argument("--loop", nargs="+", choices=["open", "closed"], default=["open"],
                        help="latlab's pacing: open loop (rate) and/or closed loop "
                             "(concurrency, tool latlab-cl; like GuideLLM's concurrent)")
    parser.add_argument("--emulators", type=int, default=1, help="emulator processes")
    parser.add_argument("--backend", choices=["process", "ray"], default="process",
                        help="workload.backend: worker processes, or Ray actors (--workers N: "
                             "N actors; tool latlab-ray)")
    parser.add_argument("--ray-address", default=None,
                        help="--backend ray: an existing cluster (default: a local instance)")
    parser.add_argument("--max-error-ms", type=float, default=5.0)
    parser.add_argument("--spin-margin-us", type=float, default=None,
                        help="the emulator's busy-wait before each send (its default if unset)")
    parser.add_argument("--peer", default=None,
                        help="path of a guidellm executable (GuideLLM 0.8.1, its own venv)")
    parser.add_argument("--peer-workers", type=int, nargs="+", default=None,
                        help="GuideLLM worker processes (default: the --workers values)")
    parser.add_argument("--peer-only", action="store_true")
    args = parser.parse_args()
    if args.peer and not os.access(args.peer, os.X_OK):
        parser.error(f"--peer: no executable at {args.peer}")
    out = sys.stdout
    with ExitStack() as stack:
        bases = [stack.enter_context(emulator(args.spin_margin_us))
                 for _ in range(args.emulators)]
        extra = ray_args(args, stack)
        out.write(f"emulators {' '.join(bases)}  profile: {' '.join(PROFILE_ARGS)}  "
                  f"cores {os.cpu_count()}  {time.strftime('%Y-%m-%d %H:%M')}\n{HEADER}")
        for loop in [] if args.peer_only else args.loop:
            for workers in args.workers:
                for target in args.streams:
                    level = measure_latlab(bases, workers, target, args.seconds, loop, extra)
                    out.write(line(level, args.max_error_ms))
                    out.flush()
        if args.peer:
            run_peer(args, bases[0], out)


if __name__ == "__main__":
    main()
