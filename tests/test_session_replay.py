"""Record on one provider, replay on another: a built-in agent session recorded with
workload.capture_bodies, exported with `latlab trace export`, replayed on the emulator's
Bedrock route sends the same calls, with the same bodies (model id aside) and think-time gaps."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from in_process import latlab_here
from result_files import request_rows

Capsys = pytest.CaptureFixture[str]


def latlab(*args: str, cwd: Path,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "latlab", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def calls(results: Path) -> list[dict[str, Any]]:
    return sorted(request_rows(results), key=lambda r: r["started_at"])


def without_model(row: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(row["request_body"])
    return {k: v for k, v in body.items() if k != "model"}


def gaps_s(rows: list[dict[str, Any]]) -> list[float]:
    """Time from each call's end to the next call's start."""
    return [(b["started_at"] - (a["started_at"] + timedelta(milliseconds=a["total_ms"])))
            .total_seconds() for a, b in zip(rows, rows[1:], strict=False)]


def test_a_recorded_session_replays_call_for_call_on_bedrock(tmp_path: Path,
                                                             capsys: Capsys) -> None:
    # in-process (tests/in_process.py): what it asserts is in the files and the output
    recorded = latlab_here(["run", "workload=session", "profile=fast", "workload.iterations=1",
                            "workload.capture_bodies=true"], capsys, tmp_path)
    assert recorded.returncode == 0, recorded.stderr
    exported = latlab_here(["trace", "export"], capsys, tmp_path)
    assert exported.returncode == 0, exported.stderr
    (tmp_path / "session.jsonl").write_text(exported.stdout, encoding="utf-8")
    replayed = latlab_here(["run", "workload=replay", "workload.trace=session.jsonl",
                            "provider=bedrock", "emulate=true", "profile=fast",
                            "workload.capture_bodies=true", "results_dir=replayed"], capsys,
                           tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    before, after = calls(tmp_path / "results"), calls(tmp_path / "replayed")
    assert len(before) == len(after) >= 3  # the session's model calls, each replayed once
    assert [without_model(r) for r in before] == [without_model(r) for r in after]
    assert {r["provider"] for r in after} == {"bedrock"}
    assert all(r["error_type"] is None for r in after)
    assert {r["model_id"] for r in after} != {r["model_id"] for r in before}
    assert [r["turn"] for r in after] == list(range(len(after)))
    # the tool time between calls is kept: each replayed gap at least the recorded one
    for old, new in zip(gaps_s(before), gaps_s(after), strict=True):
        assert new >= old - 0.002, (gaps_s(before), gaps_s(after))
    # the report shows where the replayed session's time went, call by call
    report = latlab_here(["report", "--results", "replayed", "--format", "json"], capsys,
                         tmp_path)
    assert report.returncode == 0, report.stderr
    tables = json.loads(report.stdout)["tables"]
    (by_call,) = [rows for title, rows in tables.items() if "call by call" in title]
    assert [r["turn"] for r in by_call] == list(range(len(after)))
    assert {r["provider"] for r in by_call} == {"bedrock"}
    assert all(r["elapsed_ms"] >= r["total_ms"] > 0 for r in by_call)
    (session,) = next(rows for title, rows in tables.items() if "model time" in title)
    assert session["calls"] == len(after) and session["between_calls_ms"] > 0


def test_captured_bodies_mask_secrets_and_are_off_by_default(tmp_path: Path) -> None:
    key = "sk-ant-api03-" + "x" * 24  # a secret reaches a prompt through a file, not an override
    (tmp_path / "leaky.jsonl").write_text(json.dumps({"text": f"my key is {key}"}) + "\n")
    done = latlab("run", "profile=fast", "workload.warmup=0", "workload.iterations=1",
                  "prompt=paraphrase_set", f"prompt.path={tmp_path / 'leaky.jsonl'}",
                  "workload.capture_bodies=true",
                  cwd=tmp_path, env={"LATLAB_TEST_TOKEN": key})
    assert done.returncode == 0, done.stderr
    (row,) = request_rows(tmp_path / "results")
    assert "[REDACTED]" in row["request_body"] and key not in row["request_body"]
    assert json.loads(row["request_body"])["max_tokens"] == 128
    plain = latlab("run", "profile=fast", "workload.warmup=0", "workload.iterations=1",
                   "results_dir=plain", cwd=tmp_path)
    assert plain.returncode == 0 and request_rows(tmp_path / "plain")[0]["request_body"] is None


def test_export_of_a_run_without_bodies_says_how_to_record_them(tmp_path: Path,
                                                                capsys: Capsys) -> None:
    ran = latlab_here(["run", "profile=fast", "workload.iterations=1"], capsys, tmp_path)
    assert ran.returncode == 0
    done = latlab_here(["trace", "export"], capsys, tmp_path)
    assert done.returncode == 2 and "workload.capture_bodies=true" in done.stderr
