"""Claude on Vertex AI: the provider and the emulator's rawPredict routes, over loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from drive import send_in_turn
from emulators import TOKENS, TTFB_MS, TTFT_MS
from in_process import latlab_here
from on_time import assert_on_time
from result_files import request_rows

from latlab.providers.emulator import RunningEmulator
from latlab.providers.http import make_http_client
from latlab.providers.vertex import (
    REFRESH_AFTER_S,
    RETRY_AFTER_S,
    BearerToken,
    VertexAuth,
    VertexProvider,
    model_url,
    resolve_endpoint,
    vertex_body,
)
from latlab.runner.core.errors import ConfigError, CredentialsError
from latlab.runner.core.protocol import DUMMY_KEY, Provider, RequestSpec
from latlab.runner.core.records import Measurement

MODEL = "claude-haiku-4-5@20251001"
CFG = {"name": "vertex", "kind": "vertex", "region": "us-east5", "project": "proj",
       "base_url": "https://us-east5-aiplatform.googleapis.com",
       "api_key_env": "GOOGLE_OAUTH_ACCESS_TOKEN"}
# ``emulator``: the shared one of conftest.py (timings in tests/emulators.py)


def spec(stream: bool = True) -> RequestSpec:
    return RequestSpec(model_id=MODEL, max_tokens=100, stream=stream, timeout_s=5.0,
                       messages=[{"role": "user", "content": "count"}], system="terse")


def send_all(base_url: str, specs: list[RequestSpec],
             headers: dict[str, str] | None = None) -> list[Measurement]:
    def make() -> Provider:
        provider = VertexProvider(make_http_client(), base_url, BearerToken(DUMMY_KEY), "proj",
                                  "us-east5")
        provider.headers.update(headers or {})
        return provider

    return send_in_turn(make, specs)


def test_url_and_body() -> None:
    assert model_url("https://us-east5-aiplatform.googleapis.com", "p", "us-east5", MODEL,
                     True) == ("https://us-east5-aiplatform.googleapis.com/v1/projects/p/locations/"
                               "us-east5/publishers/anthropic/models/"
                               "claude-haiku-4-5@20251001:streamRawPredict")
    body = vertex_body(spec())
    assert "model" not in body and body["anthropic_version"] == "vertex-2023-10-16"
    assert body["stream"] is True and body["system"] == "terse"


@pytest.mark.timing  # wall-clock assertions: run alone (conftest.py)
def test_streamed_timings_and_usage(emulator: RunningEmulator) -> None:
    rows = send_all(emulator.base_url, [spec()] * 6)[1:]
    assert all(r.ok for r in rows), rows[0].error_message
    assert_on_time((r.ttfb_ms for r in rows), TTFB_MS, "ttfb")
    assert_on_time((r.ttft_ms for r in rows), TTFT_MS, "ttft")
    assert all(len(r.itl_ms) == TOKENS - 1 for r in rows)
    assert rows[0].output_tokens == TOKENS and rows[0].usage_source == "api"
    assert rows[0].request_id and rows[0].request_id.startswith("req_vrtx_")


def test_raw_predict_is_one_json_message(emulator: RunningEmulator) -> None:
    (row,) = send_all(emulator.base_url, [spec(stream=False)])
    assert row.ok and row.output_tokens == TOKENS and row.ttft_ms == row.total_ms
    url = model_url(emulator.base_url, "p", "us-east5", MODEL, False)
    body = httpx.post(url, json=vertex_body(spec(stream=False)),
                      headers={"authorization": "Bearer t"}).json()
    assert body["type"] == "message" and body["model"] == MODEL


@pytest.mark.parametrize(("fault", "error_type"), [
    ("overloaded", "overloaded"), ("stream_error", "stream_error"), ("truncate", "truncated")])
def test_faults_are_rows(emulator: RunningEmulator, fault: str, error_type: str) -> None:
    (row,) = send_all(emulator.base_url, [spec()], {"x-latlab-fault": fault})
    assert row.error_type == error_type


def test_emulator_requires_a_bearer_token(emulator: RunningEmulator) -> None:
    url = model_url(emulator.base_url, "p", "us-east5", MODEL, True)
    assert httpx.post(url, json=vertex_body(spec())).status_code == 401
    bad = url.replace(":streamRawPredict", ":predict")
    assert httpx.post(bad, json={}, headers={"authorization": "Bearer t"}).status_code == 404


def test_anthropic_vertex_sdk_parses_the_emulator(emulator: RunningEmulator) -> None:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.AnthropicVertex(region="us-east5", project_id="proj", access_token="t",
                                       base_url=emulator.base_url + "/v1", max_retries=0)
    with client.messages.stream(model=MODEL, max_tokens=100,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "".join(f" {i + 1}" for i in range(TOKENS))
    assert final.usage.output_tokens == TOKENS
    client.close()


def test_env_token_and_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.token")
    endpoint = resolve_endpoint(CFG, None)
    assert endpoint.api_key == "ya29.token" and endpoint.credentials == VertexAuth("proj")
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", "from-env")
    assert resolve_endpoint({**CFG, "project": None}, None).credentials == VertexAuth("from-env")


def test_missing_project_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="provider.project"):
        resolve_endpoint({**CFG, "project": None}, None)


def test_no_token_without_google_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    monkeypatch.setitem(sys.modules, "google.auth", None)  # the extra is not installed
    with pytest.raises(CredentialsError, match=r"GOOGLE_OAUTH_ACCESS_TOKEN.*latlab\[vertex\]"):
        resolve_endpoint(CFG, None)


def test_no_adc_is_a_credentials_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("google.auth", reason="the vertex extra (google-auth) is not installed")
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))  # no gcloud ADC file
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # never probe a metadata server
    with pytest.raises(CredentialsError, match="Application Default Credentials"):
        resolve_endpoint(CFG, None)


def test_run_without_token_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GOOGLE_OAUTH_ACCESS_TOKEN"}
    env.update(CLOUDSDK_CONFIG=str(tmp_path), NO_GCE_CHECK="True")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    done = subprocess.run([sys.executable, "-m", "latlab", "run", "provider=vertex",
                           "provider.project=p"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "GOOGLE_OAUTH_ACCESS_TOKEN" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_emulated_run_writes_vertex_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = latlab_here(["run", "provider=vertex", "emulate=true", "profile=fast",
                        "workload.warmup=0", "workload.iterations=2"], capsys, tmp_path)
    assert done.returncode == 0, done.stderr
    rows = request_rows(tmp_path / "results")
    assert len(rows) == 2 and all(r["error_type"] is None for r in rows)
    assert {r["model_id"] for r in rows} == {MODEL} and rows[0]["client"] == "httpx"
    assert rows[0]["client_version"] == httpx.__version__


async def fetched(token: BearerToken) -> None:
    """Wait for the background fetch that ``current()`` started (no fixed sleep: a busy
    machine may take longer than any guess to run the thread)."""
    refreshing = token._refreshing
    assert refreshing is not None, "no fetch was started"
    await asyncio.wait_for(asyncio.shield(refreshing), 10)


def test_an_adc_token_is_fetched_again_before_it_expires() -> None:
    """Requests go on with the old token while the new one is fetched in a thread; a failed
    fetch keeps the old token and tries again RETRY_AFTER_S later."""
    now = [0.0]
    answers: list[str | CredentialsError] = ["ya29.second", CredentialsError("offline"),
                                             "ya29.third"]

    def fetch() -> str:
        answer = answers.pop(0)
        if isinstance(answer, CredentialsError):
            raise answer
        return answer

    async def go() -> list[str]:
        token = BearerToken("ya29.first", fetch, clock=lambda: now[0])
        provider = VertexProvider(make_http_client(), "http://127.0.0.1:9", token, "p", "r")
        seen = [provider.request_headers()["authorization"]]
        now[0] = REFRESH_AFTER_S  # due: this request still carries the old token
        seen.append(provider.request_headers()["authorization"])
        await fetched(token)  # the fetch (a thread) finishes
        seen.append(token.current())
        now[0] += REFRESH_AFTER_S
        token.current()
        await fetched(token)  # this fetch fails: the old token stays
        seen.append(token.current())
        now[0] += RETRY_AFTER_S
        token.current()
        await fetched(token)
        seen.append(token.current())
        await provider.aclose()
        return seen

    assert asyncio.run(go()) == ["Bearer ya29.first", "Bearer ya29.first", "ya29.second",
                                 "ya29.second", "ya29.third"]


def test_a_token_from_the_environment_is_never_fetched_again() -> None:
    async def go() -> str:
        token = BearerToken("ya29.env", clock=lambda: 10 * REFRESH_AFTER_S)
        return token.current()

    assert asyncio.run(go()) == "ya29.env"
