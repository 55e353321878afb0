"""GuideLLM 0.8.1 as a peer load tool, side by side with latlab (``bench/load.py --peer``).

GuideLLM runs from its own venv (never a latlab dependency), against the emulator's
``/v1/chat/completions``, at a fixed number of concurrent streams (``--profile
kind=concurrent,streams=N``), for a bounded time (``--constraint kind=max_duration``), on
synthetic prompts with the emulator's output length, with a local tokenizer
(``bench/peer_tokenizer.py``; the hub is offline). Its JSON report is then read back: the
per-request ``time_to_first_token_ms`` and ``inter_token_latency_ms`` (a per-request mean;
GuideLLM keeps no per-gap times) of the requests it started inside its own measured window
(after its warm-up), and the ``warnings`` it raised.

Option and field names verified against the installed source of guidellm 0.8.1
(``guidellm/schemas/backends/openai_http.py``, ``schemas/benchmark/profiles/concurrent.py``,
``schemas/scheduler/constraints/request.py``, ``schemas/base/request_stats.py``,
``schemas/benchmark/warnings.py``, ``settings.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peer_tokenizer import OFFLINE_ENV

WARMUP_S = 1.0  # GuideLLM's own warm-up (seconds): requests started before it are excluded
STARTUP_S = 240.0  # GuideLLM's start-up (spawned workers, torch import, synthetic data)


@dataclass(frozen=True)
class PeerRequest:
    """One successful request as GuideLLM measured it (times in s since the epoch)."""

    start_s: float
    end_s: float
    ttft_ms: float
    itl_ms: float | None
    output_tokens: int


@dataclass(frozen=True)
class PeerReport:
    """What one GuideLLM benchmark reported, restricted to its measured window."""

    requests: list[PeerRequest]
    errored: int
    incomplete: int
    warnings: list[str]

    def flags(self) -> str:
        return ",".join(self.warnings) or "none"


def guidellm_command(exe: str, base: str, tokenizer: Path, streams: int, seconds: float,
                     output_tokens: int, report: Path) -> list[str]:
    """``guidellm run`` for one level: N concurrent streams for ``seconds`` after warm-up."""
    return [exe, "run",
            "--profile", f"kind=concurrent,streams={streams},warmup={WARMUP_S}",
            "--constraint", f"kind=max_duration,seconds={seconds + WARMUP_S:g}",
            *common_args(base, tokenizer, output_tokens, report)]


def common_args(base: str, tokenizer: Path, output_tokens: int, report: Path) -> list[str]:
    """The emulator's chat route, the offline tokenizer, synthetic prompts, the JSON report."""
    backend = (f"kind=openai_http,target={base},model=m,api_key=dummy,http2=false,"
               "validate_backend=false,request_format=/v1/chat/completions")
    return ["--backend", backend, "--tokenizer", f"kind=hf_auto,model={tokenizer}",
            "--data", f"kind=synthetic_text,prompt_tokens=20,output_tokens={output_tokens}",
            "--metrics", "kind=generative,sample_size=0",
            "--output", f"kind=json,path={report}", "--disable-console"]


def guidellm_env(workers: int) -> dict[str, str]:
    """Offline hub, and GuideLLM's worker processes capped at ``workers``
    (``Settings.max_worker_processes``, default 10)."""
    return {**os.environ, **OFFLINE_ENV, "GUIDELLM__MAX_WORKER_PROCESSES": str(workers)}


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (as DuckDB's ``quantile_cont``)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class PeerSummary:
    """One level's figures, computed like latlab's own (bench/load.py ROW_SQL)."""

    requests: int
    tokens_per_s: float
    streams: float
    ttft_err_p50: float
    ttft_err_p99: float
    itl_err_p99: float | None


def summarize(report: PeerReport, ttft_ms: float, itl_ms: float) -> PeerSummary:
    """Errors against the known truth: TTFT − ``ttft_ms``; |per-request mean ITL − ``itl_ms``|.
    Tokens/s and mean streams in flight over the span from first start to last end."""
    reqs = report.requests
    if not reqs:
        raise RuntimeError("the peer completed no request in its measured window")
    span = max(r.end_s for r in reqs) - min(r.start_s for r in reqs)
    errors = [r.ttft_ms - ttft_ms for r in reqs]
    gaps = [abs(r.itl_ms - itl_ms) for r in reqs if r.itl_ms is not None]
    return PeerSummary(len(reqs), sum(r.output_tokens for r in reqs) / span,
                       sum(r.end_s - r.start_s for r in reqs) / span,
                       quantile(errors, 0.5), quantile(errors, 0.99),
                       quantile(gaps, 0.99) if gaps else None)


def _request(raw: dict[str, Any]) -> PeerRequest | None:
    ttft = raw.get("time_to_first_token_ms")
    start, end = raw.get("request_start_time"), raw.get("request_end_time")
    if ttft is None or start is None or end is None:
        return None
    return PeerRequest(float(start), float(end), float(ttft),
                       raw.get("inter_token_latency_ms"), int(raw.get("output_tokens") or 0))


def parse_report(data: dict[str, Any]) -> PeerReport:
    """The first benchmark of a GuideLLM JSON report (``benchmarks[0]``): successful
    requests started inside ``scheduler_metrics.measure_start_time … measure_end_time``."""
    bench = data["benchmarks"][0]
    window = bench["scheduler_metrics"]
    lo, hi = float(window["measure_start_time"]), float(window["measure_end_time"])
    requests = bench["requests"]
    parsed = [_request(raw) for raw in requests.get("successful") or []]
    kept = [r for r in parsed if r is not None and lo <= r.start_s <= hi]
    return PeerReport(kept, len(requests.get("errored") or []),
                      len(requests.get("incomplete") or []),
                      [str(w.get("code")) for w in bench.get("warnings") or []])


def run_guidellm(command: list[str], workers: int, seconds: float, report: Path) -> PeerReport:
    """Run one GuideLLM level (bounded) and parse its report; its log lands beside it."""
    log = report.with_suffix(".log")
    with log.open("w") as out:
        done = subprocess.run(command, env=guidellm_env(workers), cwd=report.parent,
                              stdout=out, stderr=subprocess.STDOUT,
                              timeout=STARTUP_S + 3 * seconds)
    if done.returncode != 0 or not report.exists():
        tail = log.read_text()[-1500:]
        raise RuntimeError(f"{command[0]} failed (exit {done.returncode}): {tail}")
    return parse_report(json.loads(report.read_text()))
