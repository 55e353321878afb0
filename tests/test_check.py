"""``latlab check``: real provider code (Anthropic over httpx, Bedrock with SigV4 and
event-stream framing) against the embedded emulator when no credentials are set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latlab.runner.app.check import check_command
from latlab.runner.core.errors import ConfigError, CredentialsError

CREDENTIAL_ENV = ("ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                  "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK",
                  "ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "OPENAI_API_KEY")


@pytest.fixture()
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.slow
@pytest.mark.timing  # output_tps needs tokens to arrive apart (a busy machine clumps them)
@pytest.mark.usefixtures("no_credentials")
def test_check_without_credentials_probes_the_emulator(tmp_path: Path) -> None:
    out = json.loads(check_command(["anthropic", "bedrock"], "json", requests=2,
                                   results=tmp_path / "kept",
                                   extra=["profile=fast"]))
    assert [(r["provider"], r["iteration"]) for r in out] == [
        ("anthropic", 0), ("anthropic", 1), ("bedrock", 0), ("bedrock", 1)]
    for row in out:
        assert row["emulated"] is True and row["error_type"] is None
        assert 0 < row["ttfb_ms"] <= row["ttft_ms"] <= row["total_ms"]
        assert row["output_tokens"] > 1 and row["output_tps"] > 0
        assert row["request_id"] and row["grade"] in {"A", "B", "C", "D", "F"}
    assert out[0]["request_id"].startswith("req_")  # Anthropic's id; Bedrock's is a UUID
    assert len(out[2]["request_id"]) == 36
    assert list((tmp_path / "kept" / "requests").iterdir())  # --keep: rows stay


@pytest.mark.slow
@pytest.mark.usefixtures("no_credentials")
def test_check_vertex_and_openai_compat_fall_back_to_the_emulator() -> None:
    """Vertex without a project and OpenAI-compatible without a key: both emulated, as the
    help says of every provider without credentials."""
    out = json.loads(check_command(["vertex", "openai_compat"], "json", extra=["profile=fast"]))
    assert [(r["provider"], r["emulated"], r["error_type"]) for r in out] == [
        ("vertex", True, None), ("openai_compat", True, None)]
    with pytest.raises(CredentialsError, match="provider.project: 'vertex' needs a Google"):
        check_command(["vertex"], "table", mode="real")


def test_check_help_lists_every_provider(capsys: pytest.CaptureFixture[str]) -> None:
    from latlab.runner.app.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["check", "--help"])
    listed = " ".join(capsys.readouterr().out.split())
    names = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "provider").glob("*.yaml"))
    assert f"provider config names: {', '.join(names)}" in listed
    assert "vertex" in names and "openai_compat" in names


@pytest.mark.usefixtures("no_credentials")
def test_check_bad_input() -> None:
    with pytest.raises(CredentialsError, match="ANTHROPIC_API_KEY"):
        check_command(["anthropic"], "table", mode="real")
    with pytest.raises(ConfigError, match="provider=nope: no such option"):
        check_command(["nope"], "table")
    with pytest.raises(ConfigError, match="-n: between 1 and 20 requests, got 0"):
        check_command(["anthropic"], "table", requests=0)
    with pytest.raises(ConfigError, match="name at least one provider"):
        check_command([], "table")
