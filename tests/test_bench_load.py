"""bench/load.py's peer comparison: GuideLLM's JSON report read back (pure, on a hand-written
report in GuideLLM 0.8.1's shape), its figures against the truth, the command it is given, the
offline tokenizer; and, when GuideLLM is installed (``LATLAB_GUIDELLM`` = its executable, in its
own venv: docs/benchmarks.md, "Peers, side by side"), a short real run against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# appended, not prepended: bench/analysis.py must not shadow the analysis package
sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))

from guidellm_peer import (  # noqa: E402
    PeerReport,
    PeerRequest,
    guidellm_command,
    parse_report,
    quantile,
    run_guidellm,
    summarize,
)
from peer_tokenizer import build_tokenizer, sentences  # noqa: E402

from latlab.providers.emulator import EmulatorProfile, start_emulator  # noqa: E402

T0 = 1796170030.0
GUIDELLM = os.environ.get("LATLAB_GUIDELLM", "")
NO_PEER = (f"GuideLLM not configured: LATLAB_GUIDELLM={GUIDELLM!r} is not an executable "
           "(set it to a guidellm in its own venv: docs/benchmarks.md, Peers, side by side)")


def stats(start: float, ttft: float | None, itl: float | None = 10.0,
          tokens: int = 50) -> dict[str, Any]:
    """One request record as GuideLLM 0.8.1 writes it (the fields bench/load.py reads, a few
    it does not, and its nested ``info``)."""
    return {"type_": "generative_request_stats", "request_id": f"r{start}", "output": None,
            "info": {"status": "completed", "timings": {"request_start": T0 + start}},
            "request_start_time": T0 + start, "request_end_time": T0 + start + 0.64,
            "request_latency": 0.64, "request_dispatch_delay": 0.01,
            "output_tokens": tokens, "time_to_first_token_ms": ttft,
            "inter_token_latency_ms": itl, "time_per_output_token_ms": 12.8}


def report(successful: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
    bench = {"type_": "generative_benchmark",
             "scheduler_metrics": {"start_time": T0, "measure_start_time": T0 + 1.0,
                                   "measure_end_time": T0 + 4.0, "end_time": T0 + 4.5},
             "requests": {"successful": successful, "errored": [stats(2.0, None)],
                          "incomplete": [stats(3.9, 151.0), stats(3.95, None)],
                          "total": None},
             "warnings": [{"code": code, "message": f"{code} over threshold", "observed": 1.0,
                           "threshold": 0.2, "unit": "seconds"} for code in warnings]}
    return {"metadata": {"version": 2, "guidellm_version": "0.8.1"}, "config": {},
            "benchmarks": [bench], "conclusions": []}


def test_report_keeps_successful_requests_started_in_the_measured_window() -> None:
    data = report([stats(0.5, 400.0), stats(1.0, 152.0), stats(2.5, 160.0, 11.0),
                   stats(3.0, None), stats(4.2, 150.0)], ["root_late"])
    parsed = parse_report(json.loads(json.dumps(data)))
    assert [r.ttft_ms for r in parsed.requests] == [152.0, 160.0]  # warm-up, no TTFT, after
    assert parsed.requests[1] == PeerRequest(T0 + 2.5, T0 + 3.14, 160.0, 11.0, 50)
    assert (parsed.errored, parsed.incomplete) == (1, 2)
    assert parsed.flags() == "root_late"
    assert parse_report(report([stats(1.5, 150.0)], [])).flags() == "none"


def test_summary_compares_with_the_truth_like_latlab() -> None:
    reqs = [PeerRequest(float(i), i + 0.5, 150.0 + i, 10.0 - i / 10, 50) for i in range(11)]
    s = summarize(PeerReport(reqs, 0, 0, []), ttft_ms=150.0, itl_ms=10.0)
    assert (s.requests, s.ttft_err_p50) == (11, 5.0)
    assert s.ttft_err_p99 == pytest.approx(9.9)
    assert s.itl_err_p99 == pytest.approx(0.99)
    assert s.tokens_per_s == pytest.approx(550 / 10.5)  # tokens over first start → last end
    assert s.streams == pytest.approx(5.5 / 10.5)  # mean in flight
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    with pytest.raises(RuntimeError, match="no request"):
        summarize(PeerReport([], 3, 0, []), 150.0, 10.0)


def test_command_asks_for_the_level_and_the_truths_output_length(tmp_path: Path) -> None:
    cmd = guidellm_command("/v/bin/guidellm", "http://127.0.0.1:9", tmp_path / "tok", 200, 8.0,
                           50, tmp_path / "r.json")
    opts = dict(zip(cmd[2:-1:2], cmd[3:-1:2], strict=True))
    assert cmd[:2] == ["/v/bin/guidellm", "run"] and cmd[-1] == "--disable-console"
    assert "target=http://127.0.0.1:9," in opts["--backend"]
    assert "request_format=/v1/chat/completions" in opts["--backend"]
    assert opts["--profile"] == "kind=concurrent,streams=200,warmup=1.0"
    assert opts["--constraint"] == "kind=max_duration,seconds=9"  # warm-up + measured
    assert opts["--data"].endswith("output_tokens=50")
    assert opts["--output"] == f"kind=json,path={tmp_path / 'r.json'}"


def test_tokenizer_corpus_is_fixed() -> None:
    corpus = sentences()
    assert len(corpus) == 400 and len(set(corpus)) > 300 and corpus == sentences()


@pytest.mark.optional
@pytest.mark.skipif(not os.access(GUIDELLM, os.X_OK), reason=NO_PEER)
def test_tokenizer_loads_offline(tmp_path: Path) -> None:
    python = str(Path(GUIDELLM).with_name("python"))
    saved = build_tokenizer(tmp_path / "tok", python)
    check = ("import sys; from transformers import AutoTokenizer as A; "
             "t = A.from_pretrained(sys.argv[1]); ids = t.encode('The quick fox, 42 times.'); "
             "print(len(ids), t.decode(ids))")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([python, "-c", check, str(saved)], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    n, text = done.stdout.strip().split(" ", 1)
    assert text == "The quick fox, 42 times." and 3 <= int(n) <= 20


@pytest.mark.slow
@pytest.mark.optional
@pytest.mark.skipif(not os.access(GUIDELLM, os.X_OK), reason=NO_PEER)
def test_guidellm_measures_the_emulator(tmp_path: Path) -> None:
    tokenizer = build_tokenizer(tmp_path / "tok", str(Path(GUIDELLM).with_name("python")))
    out = tmp_path / "r.json"
    with start_emulator(EmulatorProfile.fixed(5, 150, 10, 20)) as emulator:
        cmd = guidellm_command(GUIDELLM, emulator.base_url, tokenizer, 4, 2.0, 20, out)
        peer = run_guidellm(cmd, 1, 2.0, out)
    s = summarize(peer, 150.0, 10.0)
    assert s.requests >= 5 and peer.errored == 0
    assert -5 < s.ttft_err_p50 < 100  # its TTFT is near the truth, never below it
