"""NVIDIA AIPerf 0.13.0 as a peer of ``bench/fidelity_run.py --peer aiperf=EXE``.

AIPerf runs from its own venv (``bench/install_peers.sh``), against the emulator's
``/v1/chat/completions`` (``--endpoint-type chat --streaming``), closed loop at C concurrent
streams (``--concurrency C``) for ``--request-count WAVES*C`` requests after its own warm-up
phase of C requests (``--warmup-request-count C``), with the offline tokenizer of
``bench/peer_tokenizer.py`` (a local path: AIPerf's ``builtin`` tokenizer downloads tiktoken's
o200k_base at run time, which cannot be reached here), and its per-request export on
(``--export-level records``). Its worker and record-processor processes are AIPerf's defaults.

Read back from ``ARTIFACT_DIR/profile_export.jsonl``, one ``MetricRecordInfo`` per line
(``aiperf/common/models/record_models.py``): ``metadata.benchmark_phase`` ("warmup" or
"profiling"), ``metadata.request_start_ns`` / ``request_end_ns`` (epoch ns), ``error``, and
from ``metrics`` (each ``{"value": …, "unit": …}``): ``time_to_first_token``
(``aiperf/metrics/types/ttft_metric.py``, ms), ``inter_chunk_latency``
(``metrics/types/inter_chunk_latency_metric.py``: the gap before every content chunk after
the first, ms, one token per chunk on this emulator: per-gap times), and
``http_req_connection_reused`` (``metrics/types/http_trace_metrics.py``: 0 when the request
opened a new connection). Option names from ``aiperf profile --help`` of the installed 0.13.0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fidelity_figures import Peer, Req

EXPORT = Path("out") / "profile_export.jsonl"


def command(exe: str, base: str, level: int, waves: int, workdir: Path,
            tokenizer: Path) -> tuple[list[str], dict[str, str]]:
    """``aiperf profile`` for one level; the export lands in ``workdir/out``."""
    return [exe, "profile", "--model", "m", "--url", base, "--endpoint-type", "chat",
            "--streaming", "--api-key", "dummy", "--concurrency", str(level),
            "--request-count", str(waves * level), "--warmup-request-count", str(level),
            "--tokenizer", str(tokenizer), "--isl", "20", "--osl", "1000",
            "--random-seed", "1", "--ui", "none", "--no-server-metrics", "--no-gpu-telemetry",
            "--export-level", "records", "--artifact-dir", str(workdir / "out")], {}


def _value(metrics: dict[str, Any], tag: str) -> Any:
    entry = metrics.get(tag)
    return entry.get("value") if isinstance(entry, dict) else None


def to_req(record: dict[str, Any]) -> Req:
    """One export line as a ``Req``."""
    meta, metrics = record["metadata"], record.get("metrics") or {}
    ttft, gaps = _value(metrics, "time_to_first_token"), _value(metrics, "inter_chunk_latency")
    gap_list = tuple(float(g) for g in gaps or ())
    return Req(start_s=meta["request_start_ns"] / 1e9, end_s=meta["request_end_ns"] / 1e9,
               ttft_ms=None if ttft is None else float(ttft), gaps_ms=gap_list,
               mean_gap_ms=None, tokens=len(gap_list) + 1 if ttft is not None else 0,
               ok=record.get("error") is None and ttft is not None,
               warmup=meta.get("benchmark_phase") != "profiling",
               new_connection=_value(metrics, "http_req_connection_reused") == 0)


def read(workdir: Path) -> list[Req]:
    lines = (workdir / EXPORT).read_text().splitlines()
    return [to_req(json.loads(line)) for line in lines if line.strip()]


PEER = Peer(name="aiperf", command=command, read=read, gaps="per gap")
