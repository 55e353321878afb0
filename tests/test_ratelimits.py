"""Rate limits: the emulator's per-key token buckets (headers, 429 + retry-after), the typed
columns the providers record from the headers, and the headroom view."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from latlab.analysis.query import open_results
from latlab.providers.emulator.ratelimit import (
    RateLimiter,
    RateLimitProfile,
    anthropic_headers,
    go_duration,
    openai_headers,
)
from latlab.providers.ratelimits import duration_seconds, read_ratelimit_headers
from latlab.runner.core.records import Measurement
from tests.in_process import latlab_here
from tests.result_files import request_rows


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_requests_bucket_refuses_with_the_wait_and_refills() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitProfile({"requests": 3.0}), clock)
    assert [limiter.admit("k", 10).retry_after_s for _ in range(3)] == [None] * 3
    refused = limiter.admit("k", 10)
    assert refused.retry_after_s == pytest.approx(20.0)  # 3/min: one request every 20 s
    assert refused.refused_by == "requests"
    assert anthropic_headers(refused.levels)["anthropic-ratelimit-requests-remaining"] == "0"
    assert limiter.admit("other-key", 10).retry_after_s is None  # per key
    clock.now = 20.0
    assert limiter.admit("k", 10).retry_after_s is None


def test_output_tokens_go_into_debt_and_block_until_repaid() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitProfile({"output_tokens": 60.0}), clock)
    assert limiter.admit("k", 0).retry_after_s is None
    limiter.charge_output("k", 120)  # 60 over the bucket
    assert limiter.admit("k", 0).retry_after_s == pytest.approx(61.0)


def test_tokens_bucket_takes_input_then_output() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimitProfile({"tokens": 100.0}), clock)
    assert limiter.admit("k", 30).retry_after_s is None
    (level,) = limiter.charge_output("k", 50)
    assert (level.name, level.limit, level.remaining) == ("tokens", 100, 20)
    refused = limiter.admit("k", 30)  # 20 left, 30 wanted: 10 tokens at 100/min = 6 s
    assert (refused.refused_by, refused.retry_after_s) == ("tokens", pytest.approx(6.0))
    assert openai_headers(refused.levels)["x-ratelimit-remaining-tokens"] == "20"
    assert "x-ratelimit-limit-requests" not in openai_headers(refused.levels)


@pytest.mark.parametrize(("seconds", "text"), [(0.012, "12ms"), (1.5, "1.5s"), (15.0, "15s"),
                                               (360.0, "6m0s"), (59.9999, "1m0s"),
                                               (3723.25, "1h2m3.25s")])
def test_openai_reset_durations_read_back(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
    assert duration_seconds(text) == pytest.approx(seconds, abs=0.001)


def test_unknown_limit_is_named() -> None:
    with pytest.raises(ValueError, match=r"rate_limits.rpm: unknown limit"):
        RateLimitProfile.parse({"rpm": 5})


def test_headers_become_typed_fields() -> None:
    reset = (datetime.now(UTC) + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    m = Measurement()
    read_ratelimit_headers(m, {
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "7",
        "anthropic-ratelimit-requests-reset": reset,
        "anthropic-ratelimit-output-tokens-remaining": "800", "retry-after": "4"})
    assert (m.ratelimit_requests_limit, m.ratelimit_requests_remaining) == (50, 7)
    assert m.ratelimit_requests_reset_s is not None and 25 < m.ratelimit_requests_reset_s <= 30
    assert m.ratelimit_output_tokens_remaining == 800 and m.retry_after_s == 4.0
    assert m.ratelimit_input_tokens_limit is None
    openai = Measurement()
    read_ratelimit_headers(openai, {"x-ratelimit-limit-tokens": "1000",
                                    "x-ratelimit-remaining-tokens": "10",
                                    "x-ratelimit-reset-tokens": "6m0s"})
    assert (openai.ratelimit_tokens_limit, openai.ratelimit_tokens_remaining,
            openai.ratelimit_tokens_reset_s) == (1000, 10, 360.0)
    assert duration_seconds("20ms") == pytest.approx(0.02) and duration_seconds("x") is None


def test_emulated_run_records_the_limits_and_the_429s(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "profile=fast", "workload.warmup=0", "workload.iterations=6",
                        "+profile.rate_limits={requests_per_minute:4}"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    assert [r["error_type"] for r in rows] == [None] * 4 + ["rate_limited"] * 2
    assert [r["ratelimit_requests_remaining"] for r in rows] == [3, 2, 1, 0, 0, 0]
    assert all(r["ratelimit_requests_limit"] == 4 for r in rows)
    assert [r["retry_after_s"] for r in rows][4:] == [15.0, 15.0]  # 4/min: 15 s to the next
    con = open_results(tmp_path / "results", needs=["ratelimit_headroom"])
    (headroom,) = con.sql("SELECT limit_name, headroom, rate_limited_share "
                          "FROM ratelimit_headroom").fetchall()
    assert headroom == ("requests", 0.0, pytest.approx(2 / 6))


def latlab(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


def test_every_provider_records_its_429s_and_advise_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latlab(["run", "-m", "provider=openai_compat,bedrock,vertex", "emulate=true", "profile=fast",
            "workload.warmup=0", "workload.iterations=6",
            "+profile.rate_limits={requests_per_minute:4}"], tmp_path)
    rows = request_rows(tmp_path / "results")
    by_provider = {p: [r for r in rows if r["provider"] == p]
                   for p in ("openai_compat", "bedrock", "vertex")}
    for provider_rows in by_provider.values():
        assert [r["error_type"] for r in provider_rows] == [None] * 4 + ["rate_limited"] * 2
        assert [r["status"] for r in provider_rows][4:] == [429, 429]
    openai_rows = by_provider["openai_compat"]
    assert [r["ratelimit_requests_remaining"] for r in openai_rows] == [3, 2, 1, 0, 0, 0]
    assert [r["retry_after_s"] for r in openai_rows][4:] == [15.0, 15.0]
    assert "ThrottlingException" in by_provider["bedrock"][4]["error_message"]
    assert "RESOURCE_EXHAUSTED" in by_provider["vertex"][4]["error_message"]
    runs = sorted({r["run_id"] for r in rows})
    advised = latlab_here(["advise", *runs, "--format", "json"], capsys, tmp_path)
    assert advised.returncode == 0, advised.stderr
    advice = json.loads(advised.stdout)
    evidence = {a["cell"].partition("/")[0]: a["evidence"] for a in advice
                if a["rule"] == "rate_limits"}
    assert evidence == {
        "openai_compat": "rate-limited 33 % of requests (2 of 6); headroom 0 % at peak "
                         "(requests per minute)",
        "bedrock": "rate-limited 33 % of requests (2 of 6)",
        "vertex": "rate-limited 33 % of requests (2 of 6)"}


def test_advise_says_nothing_of_rate_limits_with_room_to_spare(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ran = latlab_here(["run", "profile=fast", "workload.warmup=0", "workload.iterations=3",
                       "+profile.rate_limits={requests_per_minute:1000}"], capsys, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert {r["ratelimit_requests_limit"] for r in request_rows(tmp_path / "results")} == {1000}
    advised = latlab_here(["advise"], capsys, tmp_path)
    assert advised.returncode == 0, advised.stderr
    out = advised.stdout
    assert "rate-limited" not in out and "headroom" not in out and "rate_limits  " not in out
