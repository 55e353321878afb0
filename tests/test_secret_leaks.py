"""No secret in any file a run writes: a table of placements of a fake secret (overrides,
experiment files, URLs, sweeps, matrix values, environment variables under any name, error
bodies that quote the key, whole or cut), each run through the real ``latlab`` entry point.
After each, EVERY file under the run's folder (Parquet, .hydra/, multirun/, logs) and its
output are searched for the secret and for every 8-character piece of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.cli_batch import run_cases
from tests.thread_server import serving

# one worker runs the table (the module fixture), not both: a group (--dist loadgroup)
pytestmark = pytest.mark.xdist_group("secret_leaks")

SECRET = "sk-ant-FAKE-SECRET-0123456789abcdef"
PLAIN = "GwQuietValue7f3aZ9c2e5b1dXq"  # no key shape, no secret-looking variable name
EXP = "exps"
RUN = ["workload.iterations=2", "workload.warmup=0", "profile=fast"]


def pieces(secret: str) -> set[str]:
    return {secret[i:i + 8] for i in range(len(secret) - 7)}


async def echo(request: web.Request) -> web.Response:
    """A hostile upstream: a 400 whose message quotes the request's headers; under /pad/ the
    quote starts so late that a 300-character cut splits the key."""
    quoted = "; ".join(f"{k}={v}" for k, v in request.headers.items()
                       if k.lower() in ("x-api-key", "authorization"))
    if request.path.startswith("/pad/"):
        quoted = "x" * 262 + quoted
    if request.path.startswith("/tail/"):
        quoted = "key ends with " + quoted[-12:]
    error = {"type": "invalid_request_error", "message": quoted}
    body = {"type": "error", "error": error, "message": quoted}
    return web.json_response(body, status=400, headers={"x-amzn-ErrorType": "ValidationException"})


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", echo)
    with serving(app) as url:
        yield url


def exp(text: str) -> dict[str, str]:
    return {f"{EXP}/mine.yaml": "# @package _global_\n" + text}


MINE = ["--experiments-dir", EXP, "experiment=mine"]
ANTHROPIC = ["provider=anthropic", "provider.base_url={echo}"]
# (id, argv after `latlab run`, env, files, refused?)
PLACEMENTS: list[tuple[str, list[str], dict[str, str], dict[str, str], bool]] = [
    ("header-override", ["+provider.headers={Authorization: Bearer " + SECRET + "}"], {}, {},
     True),
    ("aws-secret-override", [f"+provider.aws_secret_access_key={SECRET}"], {}, {}, True),
    ("x-api-key-override", [f"+provider.x-api-key={SECRET}"], {}, {}, True),
    ("credentials-override", [f"+provider.credentials={SECRET}"], {}, {}, True),
    ("password-override", [f"+provider.password={SECRET}"], {}, {}, True),
    ("token-override", [f"+workload.token={PLAIN}"], {}, {}, True),
    ("env-set-key", [f"+hydra.job.env_set.AWS_SECRET_ACCESS_KEY={PLAIN}"], {}, {}, True),
    ("env-set-session", [f"+hydra.job.env_set.AWS_SESSION_TOKEN={PLAIN}"], {}, {}, True),
    ("env-set-map", ["+hydra.job.env_set={AWS_SECRET_ACCESS_KEY: " + PLAIN + "}"], {}, {},
     True),
    ("run-name-key", [f"run_name={SECRET}"], {}, {}, True),
    ("prompt-key", [f"prompt.text={SECRET}"], {}, {}, True),
    ("url-userinfo", ["provider=anthropic", f"provider.base_url=http://me:{PLAIN}@127.0.0.1:9"],
     {}, {}, True),
    ("url-query-key", ["provider=anthropic",
                       f"provider.base_url=http://127.0.0.1:9/v1?api_key={PLAIN}"], {}, {}, True),
    ("url-query-signature", ["provider=anthropic",
                             f"provider.base_url=http://127.0.0.1:9/?X-Amz-Signature={PLAIN}"],
     {}, {}, True),
    ("sweep-second-value", ["-m", f"run_name=fine,{SECRET}"], {}, {}, True),
    ("matrix-url", [f"++matrix.provider.base_url=[http://127.0.0.1:9,http://u:{PLAIN}@h]"], {},
     {}, True),
    ("env-piece-in-override", [f"run_name=x{PLAIN[3:17]}x"], {"MY_GATEWAY_TOKEN": PLAIN}, {},
     True),
    ("experiment-api-key", MINE, {}, exp(f"provider:\n  api_key: {PLAIN}\n"), True),
    ("experiment-url", MINE, {}, exp(f"provider:\n  base_url: http://u:{PLAIN}@127.0.0.1:9\n"),
     True),
    ("experiment-token-key", MINE, {}, exp(f"workload:\n  token: {PLAIN}\n"), True),
    ("experiment-key-shape", MINE, {}, exp(f"run_name: {SECRET}\n"), True),
    # runs that happen: the key is in the environment, the upstream quotes it back
    ("anthropic-echo", [*ANTHROPIC, *RUN], {"ANTHROPIC_API_KEY": SECRET}, {}, False),
    ("anthropic-echo-cut", ["provider=anthropic", "provider.base_url={echo}/pad", *RUN],
     {"ANTHROPIC_API_KEY": SECRET}, {}, False),
    ("anthropic-echo-tail", ["provider=anthropic", "provider.base_url={echo}/tail", *RUN],
     {"ANTHROPIC_API_KEY": SECRET}, {}, False),
    ("custom-env-name", [*ANTHROPIC, "provider.api_key_env=MY_GATEWAY", *RUN],
     {"MY_GATEWAY": PLAIN}, {}, False),
    ("custom-env-cut", ["provider=anthropic", "provider.base_url={echo}/pad",
                        "provider.api_key_env=MY_GATEWAY", *RUN], {"MY_GATEWAY": PLAIN}, {},
     False),
    ("openai-echo", ["provider=openai_compat", "provider.base_url={echo}/pad", *RUN],
     {"OPENAI_API_KEY": SECRET}, {}, False),
    ("openai-custom-env", ["provider=openai_compat", "provider.base_url={echo}",
                           "provider.api_key_env=MY_GATEWAY", *RUN], {"MY_GATEWAY": PLAIN}, {},
     False),
    ("bedrock-bearer", ["provider=bedrock", "provider.endpoint_url={echo}/pad", *RUN],
     {"AWS_BEARER_TOKEN_BEDROCK": PLAIN}, {}, False),
    ("emulated-sweep-with-keys", ["-m", "model=haiku-4-5,sonnet-4-5", *RUN],
     {"ANTHROPIC_API_KEY": SECRET, "AWS_SECRET_ACCESS_KEY": PLAIN}, {}, False),
    ("user-experiment-matrix", [*MINE, *RUN], {"ANTHROPIC_API_KEY": SECRET},
     exp("matrix:\n  model: [haiku-4-5, sonnet-4-5]\n"), False),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, echo_url: str) -> dict[str, Any]:
    cases = [{"id": i, "argv": ["run", *[a.replace("{echo}", echo_url) for a in argv]],
              "env": env, "files": files} for i, argv, env, files, _ in PLACEMENTS]
    return run_cases(cases, tmp_path_factory.mktemp("leaks"), timeout_s=900)


def test_the_table_is_large() -> None:
    assert len(PLACEMENTS) >= 25


@pytest.mark.parametrize(("case", "argv", "env", "files", "refused"), PLACEMENTS,
                         ids=[p[0] for p in PLACEMENTS])
def test_no_piece_of_the_secret_in_any_file(outcomes: dict[str, Any], case: str,
                                            argv: list[str], env: dict[str, str],
                                            files: dict[str, str], refused: bool) -> None:
    result = outcomes[case]
    folder = Path(result["folder"])
    if refused:
        assert result["code"] == 2, result
        assert "looks like a credential" in result["stderr"] or "api_key" in result["stderr"] \
            or "URL" in result["stderr"], result["stderr"]
        assert result["written"] == [], result["written"]
    else:
        assert result["code"] == 0, result["stderr"][-2000:]
        assert any(name.endswith(".parquet") for name in result["written"])
        assert any(".hydra" in name for name in result["written"])
    given = set(files)
    for secret in (SECRET, PLAIN):
        for path in (p for p in folder.rglob("*") if p.is_file()):
            if str(path.relative_to(folder)) in given:
                continue  # the user's own file, holding the secret we put there
            data = path.read_bytes()
            found = [p for p in pieces(secret) if p.encode() in data]
            assert not found, f"{found[0]!r} of the secret in {path.relative_to(folder)}"
        assert not [p for p in pieces(secret) if p in result["stderr"]], result["stderr"]
