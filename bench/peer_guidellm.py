"""GuideLLM 0.8.1 as a peer of ``bench/fidelity_run.py --peer guidellm=EXE``.

GuideLLM runs from its own venv (``bench/install_peers.sh``), against the emulator's
``/v1/chat/completions``, closed loop at C concurrent streams (``concurrent`` profile) with a
warm-up of C requests (``warmup: {mode: requests, value: C}``,
``guidellm/schemas/benchmark/transient.py``) and ``max_requests`` = (WAVES+2)·C in all
(``schemas/scheduler/constraints/request.py``; one wave more than asked, since GuideLLM's
measured window opens at a time, ``benchmark/schemas/accumulator.py``, and requests started
just before it count as warm-up), with the offline tokenizer and the backend,
data and report options of ``bench/guidellm_peer.py`` (``common_args``). Its worker process
count is its default (``Settings.max_worker_processes``, ``settings.py``).

Read back from its JSON report, ``benchmarks[0]``: ``requests.successful`` / ``errored`` /
``incomplete`` (``GenerativeRequestStats``, ``schemas/base/request_stats.py``):
``request_start_time``, ``request_end_time`` (epoch s), ``time_to_first_token_ms``,
``inter_token_latency_ms`` (a per-request mean: GuideLLM keeps no per-token times, its
``iter_tokens_timings`` spaces them evenly) and ``info.timings.token_iterations`` (chunks
with content); warm-up = started before ``scheduler_metrics.measure_start_time``. Its export
does not say which request opened a connection: the emulator's accept log decides. (Every
GuideLLM request opens one: ``backends/openai/http.py`` leaves ``client.stream(...)`` with a
``break`` at ``data: [DONE]``, before the body's last chunk, and httpx then closes the
connection instead of pooling it.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fidelity_figures import TOKENS, Peer, Req
from guidellm_peer import common_args
from peer_tokenizer import OFFLINE_ENV

REPORT = "report.json"


def command(exe: str, base: str, level: int, waves: int, workdir: Path,
            tokenizer: Path) -> tuple[list[str], dict[str, str]]:
    """``guidellm run`` for one level: C warm-up requests, then at least WAVES·C measured."""
    profile = {"kind": "concurrent", "streams": level,
               "warmup": {"mode": "requests", "value": level}}
    constraint = {"kind": "max_requests", "count": (waves + 2) * level}
    return [exe, "run", "--profile", json.dumps(profile), "--constraint", json.dumps(constraint),
            *common_args(base, tokenizer, TOKENS, workdir / REPORT)], OFFLINE_ENV


def to_req(raw: dict[str, Any], ok: bool, measure_start: float) -> Req | None:
    """One request of the report as a ``Req`` (None without start or end time)."""
    start, end = raw.get("request_start_time"), raw.get("request_end_time")
    if start is None or end is None:
        return None
    ttft, timings = raw.get("time_to_first_token_ms"), raw["info"]["timings"]
    return Req(start_s=float(start), end_s=float(end),
               ttft_ms=None if ttft is None else float(ttft), gaps_ms=None,
               mean_gap_ms=raw.get("inter_token_latency_ms"),
               tokens=int(timings.get("token_iterations") or 0),
               ok=ok and ttft is not None, warmup=float(start) < measure_start,
               new_connection=False)


def read(workdir: Path) -> list[Req]:
    bench = json.loads((workdir / REPORT).read_text())["benchmarks"][0]
    measure_start = float(bench["scheduler_metrics"]["measure_start_time"])
    parsed = [to_req(raw, kind == "successful", measure_start)
              for kind in ("successful", "errored", "incomplete")
              for raw in bench["requests"].get(kind) or []]
    return [r for r in parsed if r is not None]


PEER = Peer(name="guidellm", command=command, read=read,
            gaps="per-request mean", needs_accepts=True)
