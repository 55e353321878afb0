"""Claude on Google Vertex AI (``provider=vertex``): ``rawPredict`` / ``streamRawPredict``.

    POST {base}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/{m}:rawPredict
    POST …:streamRawPredict                                         (``workload.stream: true``)

The body is the Messages API body without ``model`` (it is in the path) and with Vertex's
``anthropic_version`` (``vertex-2023-10-16``); ``stream`` stays in the body. Responses are the
Anthropic JSON and SSE events, so timing and rows are exactly the Anthropic client's
(``latlab.providers.anthropic``). ``base`` is ``https://{region}-aiplatform.googleapis.com``
(``provider.base_url``; region ``global`` uses ``https://aiplatform.googleapis.com``).

Credentials (preflight, before any request): an OAuth access token from the environment
variable named by ``provider.api_key_env`` (``GOOGLE_OAUTH_ACCESS_TOKEN``; e.g.
``$(gcloud auth print-access-token)``), else Application Default Credentials through
google-auth (the optional extra ``latlab[vertex]``). The project: ``provider.project``, else
``ANTHROPIC_VERTEX_PROJECT_ID`` or ``GOOGLE_CLOUD_PROJECT``.

Access tokens live an hour. A token from ADC is fetched again during a run once it is
``REFRESH_AFTER_S`` old (in a thread: the event loop never waits for Google's token endpoint);
a token from the environment cannot be renewed by latlab, so sweeps longer than about 50
minutes should use ADC.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from latlab.providers.anthropic import AnthropicProvider, messages_body
from latlab.providers.clients import client_of, http_client_for
from latlab.runner.core.errors import CredentialsError
from latlab.runner.core.protocol import DUMMY_KEY, Endpoint, Provider, RequestSpec, is_loopback

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
DEFAULT_REGION = "us-east5"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
PROJECT_ENVS = ("ANTHROPIC_VERTEX_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")
EMULATOR_PROJECT = "latlab-emulator"


def region_of(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("region") or DEFAULT_REGION)


def project_of(cfg: Mapping[str, Any], emulated: bool) -> str:
    """``provider.project``, else the environment; CredentialsError (the setup a real call
    needs, like a key: latlab check falls back to the emulator) when neither is set."""
    project = cfg.get("project") or next((os.environ[e] for e in PROJECT_ENVS
                                          if os.environ.get(e)), None)
    if project:
        return str(project)
    if emulated:
        return EMULATOR_PROJECT
    raise CredentialsError(f"provider.project: {cfg['name']!r} needs a Google Cloud project: "
                           f"set provider.project or {PROJECT_ENVS[0]}")


def model_url(base_url: str, project: str, region: str, model_id: str, stream: bool) -> str:
    method = "streamRawPredict" if stream else "rawPredict"
    return (f"{base_url.rstrip('/')}/v1/projects/{project}/locations/{region}"
            f"/publishers/anthropic/models/{model_id}:{method}")


def vertex_body(spec: RequestSpec) -> dict[str, Any]:
    """The Messages body without ``model``, with Vertex's ``anthropic_version``."""
    body = messages_body(spec)
    del body["model"]
    return {"anthropic_version": VERTEX_ANTHROPIC_VERSION, **body}


def adc_token() -> str:
    """An access token from Application Default Credentials; CredentialsError otherwise."""
    try:
        import google.auth
        import google.auth.exceptions
        from google.auth.transport.requests import Request
    except ImportError as exc:
        raise CredentialsError(
            "provider.vertex: no access token: set GOOGLE_OAUTH_ACCESS_TOKEN, or install the "
            "vertex extra (pip install 'latlab[vertex]') for Application Default Credentials"
        ) from exc
    try:
        found: tuple[Any, Any] = google.auth.default(scopes=list(SCOPES))
        credentials = found[0]  # Any: google-auth's refresh() is untyped
        credentials.refresh(Request())
    except google.auth.exceptions.GoogleAuthError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CredentialsError(f"provider.vertex: Application Default Credentials: {first}; "
                               "run `gcloud auth application-default login` or set "
                               "GOOGLE_OAUTH_ACCESS_TOKEN") from exc
    return str(credentials.token)


REFRESH_AFTER_S = 45 * 60  # Google access tokens live 60 minutes
RETRY_AFTER_S = 60.0  # a failed re-fetch keeps the old token and tries again this much later


@dataclass(frozen=True)
class VertexAuth:
    """``Endpoint.credentials`` for Vertex: the project, and whether the token came from ADC
    (and so can be fetched again during the run)."""

    project: str
    adc: bool = False


class BearerToken:
    """The token of every request; an ADC token is fetched again once it is
    ``REFRESH_AFTER_S`` old, in a thread, while requests go on with the old (still valid) one."""

    def __init__(self, token: str, fetch: Callable[[], str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token, self._fetch, self._clock = token, fetch, clock
        self._fetched_at = clock()
        self._refreshing: asyncio.Task[None] | None = None

    def current(self) -> str:
        """The token to send now (starts a background re-fetch when it is due)."""
        due = self._clock() - self._fetched_at >= REFRESH_AFTER_S
        if self._fetch is not None and due and self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._refetch(self._fetch))
        return self.token

    async def _refetch(self, fetch: Callable[[], str]) -> None:
        try:
            self.token = await asyncio.to_thread(fetch)
            self._fetched_at = self._clock()
        except CredentialsError:  # keep the old token: a 401 becomes a visible error row
            self._fetched_at = self._clock() - REFRESH_AFTER_S + RETRY_AFTER_S
        finally:
            self._refreshing = None


def resolve_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Preflight: project and token (env, then ADC), or the emulator with a dummy token."""
    client_of(cfg)
    emulated = emulator_url is not None
    project = project_of(cfg, emulated)
    if emulator_url is not None:
        return Endpoint(emulator_url, DUMMY_KEY, emulated=True, credentials=VertexAuth(project))
    base = str(cfg["base_url"])
    env = str(cfg.get("api_key_env") or "")
    token = os.environ.get(env, "") if env else ""
    if token or is_loopback(base):
        return Endpoint(base, token or DUMMY_KEY, emulated=False, credentials=VertexAuth(project))
    return Endpoint(base, adc_token(), emulated=False, credentials=VertexAuth(project, adc=True))


class VertexProvider(AnthropicProvider):
    """The Anthropic client with Vertex's URL, body and bearer token."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, token: BearerToken,
                 project: str, region: str, transport: str = "aiohttp") -> None:
        super().__init__(client, base_url, token.token, transport)
        self.base_url, self.project, self.region, self.token = base_url, project, region, token
        self.headers = {"content-type": "application/json"}

    def request_headers(self) -> dict[str, str]:
        return {**self.headers, "authorization": f"Bearer {self.token.current()}"}

    def url_for(self, spec: RequestSpec) -> str:
        return model_url(self.base_url, self.project, self.region, spec.model_id, spec.stream)

    def body_for(self, spec: RequestSpec) -> dict[str, Any]:
        return vertex_body(spec)


def build(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    """The Vertex provider for ``cfg`` (``client: httpx``): ADC tokens refresh themselves."""
    auth: VertexAuth = endpoint.credentials
    token = BearerToken(endpoint.api_key or "", adc_token if auth.adc else None)
    return VertexProvider(http_client_for(cfg), endpoint.base_url, token, auth.project,
                          region_of(cfg), str(cfg.get("transport", "aiohttp")))
