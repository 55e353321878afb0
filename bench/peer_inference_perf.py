"""inference-perf 0.7.0 as a peer of ``bench/fidelity_run.py --peer inference-perf=EXE``.

inference-perf runs from its own venv (``bench/install_peers.sh``: it declares Python ≥ 3.12
and runs here on 3.11), from a YAML config (``inference_perf/config/config.py`` ``Config``):
``api: {type: chat, streaming: true}`` against the emulator's ``/v1/chat/completions``
(``server.type: vllm``, its OpenAI-compatible client), ``load.type: concurrent`` with two
stages (``config/loadgen/config.py`` ``ConcurrentLoadStage``): C requests at C streams (its
warm-up: inference-perf has none of its own) then WAVES·C at C streams; ``data.type: mock``
(``datagen/synthetic/mock_datagen.py``: "mock prompt N"). Its synthetic generators with
set lengths (``random``, ``synthetic``, text-only ``shared_prefix``) send to
``/v1/completions`` only, which the emulator does not serve, and ``mock`` requests carry the
client's default ``max_tokens`` of 30 (``client/modelserver/openai_client.py``
``max_completion_tokens``, not configurable), so its requests stream 30 tokens, not 50: its
CPU per token is over the tokens it received. The offline tokenizer
(``tokenizer.pretrained_model_name_or_path``) is still loaded. Its worker processes are its
default (``load.num_workers``: the CPU count).

Read back from its per-request report (``report.request_lifecycle.per_request``,
``reportgen/base.py`` ``build_per_request_lifecycle_entry``):
``per_request_lifecycle_metrics.json`` under ``storage.local_storage.path``, a list of
``{start_time, end_time, info, error, …}`` with times from ``time.perf_counter()``
(``client/modelserver/openai_client.py``; CLOCK_MONOTONIC, shared by every process, so they
are shifted to the epoch here), and ``info.response_metrics.chunk_times``
(``apis/base.py`` ``StreamedResponseMetrics``; ``apis/streaming_parser.py``: one
perf-counter time per content-bearing chunk: per-gap times). The report carries no stage id:
its first C requests by start time are the warm-up stage (the second stage starts after the
first has ended). It does not say which request opened a connection: the emulator's accept
log decides.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from fidelity_figures import Peer, Req
from peer_tokenizer import OFFLINE_ENV

CONFIG = "config.yml"
REPORT = "per_request_lifecycle_metrics.json"
STAGE_GAP_S = 0.5  # load.interval: seconds between the warm-up and the measured stage


def config(base: str, level: int, waves: int, workdir: Path, tokenizer: Path) -> dict[str, Any]:
    """The run's config: warm-up stage, measured stage, per-request report only."""
    return {
        "api": {"type": "chat", "streaming": True},
        "data": {"type": "mock"},
        "load": {"type": "concurrent", "interval": STAGE_GAP_S,
                 "stages": [{"num_requests": level, "concurrency_level": level},
                            {"num_requests": waves * level, "concurrency_level": level}]},
        "server": {"type": "vllm", "model_name": "m", "base_url": base, "api_key": "dummy"},
        "tokenizer": {"pretrained_model_name_or_path": str(tokenizer)},
        "report": {"request_lifecycle": {
            "summary": False, "per_stage": False, "per_request": True, "per_adapter": False,
            "per_adapter_stage": False,
            "per_request_fields": {"request": False, "response": False, "info": True,
                                   "response_chunks": False, "computed_metrics": False}}},
        "storage": {"local_storage": {"path": str(workdir / "out")}},
    }


def command(exe: str, base: str, level: int, waves: int, workdir: Path,
            tokenizer: Path) -> tuple[list[str], dict[str, str]]:
    """``inference-perf --config_file CONFIG`` for one level."""
    path = workdir / CONFIG
    path.write_text(yaml.safe_dump(config(base, level, waves, workdir, tokenizer)))
    return [exe, "--config_file", str(path)], OFFLINE_ENV


def to_req(entry: dict[str, Any], shift: float) -> Req:
    """One report entry as a ``Req`` (``shift``: epoch − perf-counter seconds)."""
    start = float(entry["start_time"])
    metrics = (entry.get("info") or {}).get("response_metrics") or {}
    times = [float(t) for t in metrics.get("chunk_times") or []]
    gaps = tuple((b - a) * 1000 for a, b in zip(times, times[1:], strict=False))
    return Req(start_s=start + shift, end_s=float(entry["end_time"]) + shift,
               ttft_ms=(times[0] - start) * 1000 if times else None, gaps_ms=gaps,
               mean_gap_ms=None, tokens=len(times),
               ok=entry.get("error") is None and bool(times), warmup=False,
               new_connection=False)


def read(workdir: Path) -> list[Req]:
    (path,) = (workdir / "out").rglob(REPORT)
    shift = time.time() - time.perf_counter()
    reqs = sorted((to_req(e, shift) for e in json.loads(path.read_text())),
                  key=lambda r: r.start_s)
    warm = yaml.safe_load((workdir / CONFIG).read_text())["load"]["stages"][0]["num_requests"]
    return [replace(r, warmup=i < warm) for i, r in enumerate(reqs)]


PEER = Peer(name="inference-perf", command=command, read=read, gaps="per gap",
            needs_accepts=True)
