"""AWS Bedrock Runtime (``provider=bedrock``): InvokeModel[WithResponseStream] and Converse[Stream].

``provider.api`` picks the operation family (``invoke``/``invoke_stream``: InvokeModel,
``converse``/``converse_stream``: Converse); ``workload.stream`` picks the streaming variant,
so a ``workload.stream`` matrix axis compares InvokeModel with InvokeModelWithResponseStream.

Two clients (``provider.client``):

- ``httpx`` (default): the request is built by hand (wire-formats §2), signed with botocore's
  ``SigV4Auth`` (credentials from the botocore chain: env, ~/.aws files or
  ``provider.profile_name``, SSO, instance roles) or sent with a Bedrock API key
  (``AWS_BEARER_TOKEN_BEDROCK``), and sent on the injected httpx client. Each chunk is stamped
  the moment it arrives, then decoded with botocore's ``EventStreamBuffer``; the Anthropic
  events inside ``chunk`` frames are interpreted by ``latlab.providers.anthropic.AnthropicStream``.
- ``boto3``: the plain boto3 client (retries off, pool ≥ connections) run in worker threads;
  each event is stamped as the boto3 iterator yields it.

Besides the client-side phases (``latlab.runner.core.timing``), the row gets Bedrock's own numbers:
``server_latency_ms`` (``invocationLatency``, the ``X-Amzn-Bedrock-Invocation-Latency`` header,
or Converse ``metrics.latencyMs``), ``server_first_byte_ms`` (``firstByteLatency``) and, with
a guardrail, ``guardrail_action`` (``NONE``/``INTERVENED``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from urllib.parse import quote

import httpx
import urllib3.exceptions
import yarl
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, ParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    EventStreamError,
    HTTPClientError,
    ReadTimeoutError,
)

from latlab.providers.anthropic import AnthropicStream, apply_usage, read_message
from latlab.providers.clients import CLIENTS
from latlab.providers.failures import describe, error_type_for_status
from latlab.providers.http import (
    ConnectionTiming,
    StreamResponse,
    finish_measurement,
    httpcore_trace,
    make_http_client,
    open_stream,
    read_stream,
    timed_exchange,
)
from latlab.providers.ratelimits import read_ratelimit_headers
from latlab.runner.core.errors import ConfigError, CredentialsError
from latlab.runner.core.protocol import Endpoint, Provider, RequestSpec, is_loopback
from latlab.runner.core.records import Measurement
from latlab.runner.core.secrets import clip
from latlab.runner.core.timing import StreamClock, now_ns

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
SERVICE = "bedrock"
DEFAULT_REGION = "us-east-1"
APIS = ("invoke", "invoke_stream", "converse", "converse_stream")
BEARER_ENV = "AWS_BEARER_TOKEN_BEDROCK"
DUMMY_CREDENTIALS = Credentials("AKIDLATLABDUMMY", "dummy-secret")  # emulator only
METRICS_KEY = "amazon-bedrock-invocationMetrics"
GUARDRAIL_ACTION_KEY = "amazon-bedrock-guardrailAction"
UNBOUNDED_POOL = 1024  # max_connections: 0 on the boto3 client (threads and pool slots)

# operation family → (path when not streamed, path when streamed)
PATHS = {"invoke": ("invoke", "invoke-with-response-stream"),
         "converse": ("converse", "converse-stream")}
BOTO3_METHODS = {"invoke": "invoke_model", "invoke-with-response-stream":
                 "invoke_model_with_response_stream", "converse": "converse",
                 "converse-stream": "converse_stream"}

# AWS error codes (header x-amzn-ErrorType, body __type/code, boto3 Error.Code) → error_type
AWS_ERROR_TYPES = {
    "ThrottlingException": "rate_limited",
    "ServiceUnavailableException": "overloaded",
    "ModelNotReadyException": "overloaded",
    "InternalServerException": "server_error",
    "ModelErrorException": "server_error",
    "ModelTimeoutException": "server_error",
    "ValidationException": "client_error",
    "ResourceNotFoundException": "client_error",
    "AccessDeniedException": "access_denied",
    "UnrecognizedClientException": "access_denied",
    "ExpiredTokenException": "access_denied",
    "InvalidSignatureException": "access_denied",
    "IncompleteSignatureException": "access_denied",
    "MissingAuthenticationTokenException": "access_denied",
}


# ---------------------------------------------------------------------------- config


def check_options(cfg: Mapping[str, Any]) -> None:
    """ConfigError for an unknown ``provider.api`` or ``provider.client``, or a Bedrock API
    key with the boto3 client (which latlab would not send as the key: refused up front)."""
    api, client = str(cfg.get("api", "invoke_stream")), str(cfg.get("client", "httpx"))
    if api not in APIS:
        raise ConfigError(f"provider.api: {api!r} is not a Bedrock API; use {', '.join(APIS)}")
    if client not in CLIENTS["bedrock"]:
        raise ConfigError(f"provider.client: {client!r}; use {' or '.join(CLIENTS['bedrock'])}")
    if client == "boto3" and os.environ.get(BEARER_ENV):
        raise ConfigError(f"provider.client: boto3 is not used with a Bedrock API key "
                          f"({BEARER_ENV}); use provider.client=httpx, or unset {BEARER_ENV} "
                          "to sign with AWS credentials")


def region_of(cfg: Mapping[str, Any]) -> str:
    return str(cfg.get("region") or DEFAULT_REGION)


def regional_url(cfg: Mapping[str, Any]) -> str:
    """``endpoint_url`` when set, else the region's public Bedrock Runtime endpoint."""
    return str(cfg.get("endpoint_url") or f"https://bedrock-runtime.{region_of(cfg)}.amazonaws.com")


def session_credentials(cfg: Mapping[str, Any]) -> Any:
    """Credentials from botocore's chain (env, ~/.aws or ``profile_name``, SSO, instance role)."""
    import botocore.session

    try:
        session = botocore.session.Session(profile=cfg.get("profile_name") or None)
        return session.get_credentials()
    except BotoCoreError as exc:
        raise CredentialsError(f"provider.{cfg['name']}: AWS credentials: {exc}") from exc


def resolve_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Preflight: the emulator with dummy SigV4 credentials, or the real credential chain."""
    check_options(cfg)
    if emulator_url is not None:
        return Endpoint(emulator_url, None, emulated=True, credentials=DUMMY_CREDENTIALS)
    token = os.environ.get(BEARER_ENV, "")
    credentials = None if token else session_credentials(cfg)
    if not token and credentials is None and is_loopback(regional_url(cfg)):
        credentials = DUMMY_CREDENTIALS  # a local server (`latlab emulator serve`) on endpoint_url
    if not token and credentials is None:
        raise CredentialsError(
            f"provider.{cfg['name']}: no AWS credentials found (env, ~/.aws, SSO or instance "
            f"role); set AWS_PROFILE or provider.profile_name, {BEARER_ENV}, or run on the "
            "emulator: emulate=true")
    return Endpoint(regional_url(cfg), token or None, emulated=False, credentials=credentials)


def build(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    """The provider for ``cfg`` (``ProviderKind.build``)."""
    check_options(cfg)
    api, transport = str(cfg.get("api", "invoke_stream")), str(cfg.get("transport", "aiohttp"))
    if cfg.get("client", "httpx") == "boto3":
        return Boto3BedrockProvider(cfg, endpoint, api)
    client = make_http_client(transport, int(cfg.get("max_connections", 0)),
                              bool(cfg.get("reuse_connections", True)))
    signer = RequestSigner(endpoint.credentials or DUMMY_CREDENTIALS, region_of(cfg),
                           endpoint.api_key, transport)
    return BedrockProvider(client, endpoint.base_url, signer, api, transport)


# ---------------------------------------------------------------------------- requests


def operation(api: str, stream: bool) -> str:
    """The path suffix of the operation: the ``api`` family, streamed or not."""
    return PATHS[api.removesuffix("_stream")][1 if stream else 0]


def model_path(model_id: str) -> str:
    """The model id as one path segment, quoted like botocore (only ``-._~`` left as is)."""
    return quote(model_id, safe="")


def invoke_body(spec: RequestSpec) -> dict[str, Any]:
    """The Anthropic body for Bedrock: no ``model``/``stream``, Bedrock's ``anthropic_version``."""
    body: dict[str, Any] = {"anthropic_version": BEDROCK_ANTHROPIC_VERSION,
                            "max_tokens": spec.max_tokens, "messages": spec.messages}
    if spec.system is not None:
        body["system"] = spec.system
    body.update(spec.extra_body)
    return body


def converse_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Anthropic text content as Converse content blocks (``cache_control`` → ``cachePoint``)."""
    if isinstance(content, str):
        return [{"text": content}]
    blocks: list[dict[str, Any]] = []
    for block in content:
        if block.get("type") != "text":
            raise ValueError(f"Converse: only text blocks are supported, got {block.get('type')}")
        blocks.append({"text": block["text"]})
        if block.get("cache_control"):
            blocks.append({"cachePoint": {"type": "default"}})
    return blocks


def converse_body(spec: RequestSpec) -> dict[str, Any]:
    """The Converse request (also boto3's keyword arguments, minus ``modelId``)."""
    body: dict[str, Any] = {
        "messages": [{"role": m["role"], "content": converse_blocks(m["content"])}
                     for m in spec.messages],
        "inferenceConfig": {"maxTokens": spec.max_tokens},
    }
    if spec.system is not None:
        body["system"] = converse_blocks(spec.system)
    if spec.guardrail:
        body["guardrailConfig"] = converse_guardrail(spec.guardrail)
    if spec.extra_body:
        body["additionalModelRequestFields"] = dict(spec.extra_body)
    return body


def converse_guardrail(guardrail: Mapping[str, Any]) -> dict[str, Any]:
    return {"guardrailIdentifier": str(guardrail["identifier"]),
            "guardrailVersion": str(guardrail["version"]),
            "trace": "enabled" if guardrail.get("trace") else "disabled"}


def guardrail_headers(guardrail: Mapping[str, Any] | None) -> dict[str, str]:
    """The Invoke* guardrail headers (none without a guardrail)."""
    if not guardrail:
        return {}
    return {"X-Amzn-Bedrock-GuardrailIdentifier": str(guardrail["identifier"]),
            "X-Amzn-Bedrock-GuardrailVersion": str(guardrail["version"]),
            "X-Amzn-Bedrock-Trace": "ENABLED" if guardrail.get("trace") else "DISABLED"}


def request_parts(spec: RequestSpec, op: str) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers (before signing) of one operation."""
    headers = {"Content-Type": "application/json"}
    if op.startswith("converse"):
        return json.dumps(converse_body(spec)).encode(), headers
    accept = "X-Amzn-Bedrock-Accept" if op.endswith("stream") else "Accept"
    headers = {**headers, accept: "application/json", **guardrail_headers(spec.guardrail)}
    return json.dumps(invoke_body(spec)).encode(), headers


def wire_url(url: str, transport: str) -> str:
    """The URL exactly as the transport writes it, which is what SigV4 must sign.

    aiohttp re-parses URLs with yarl, which unescapes what a path may hold (``%3A`` → ``:``);
    httpcore sends the path as given.
    """
    if transport == "aiohttp":
        return str(yarl.URL(url))
    return str(httpx.URL(url))


@dataclass(frozen=True)
class RequestSigner:
    """Signs requests with SigV4 (or adds a Bedrock API key as a bearer token)."""

    credentials: Any
    region: str
    bearer: str | None = None
    transport: str = "aiohttp"

    def sign(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """The URL to send and the headers with ``Authorization`` (and X-Amz-*) added."""
        url = wire_url(url, self.transport)
        if self.bearer:
            return url, {**headers, "Authorization": f"Bearer {self.bearer}"}
        frozen = self.credentials.get_frozen_credentials()
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(frozen, SERVICE, self.region).add_auth(request)
        return url, dict(request.headers.items())


# ---------------------------------------------------------------------------- responses


def error_code(headers: Mapping[str, str], body: bytes) -> tuple[str | None, str | None]:
    """(code, message) of a rest-json error: ``x-amzn-ErrorType`` or ``__type``/``code``."""
    try:
        data = json.loads(body)
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    code = headers.get("x-amzn-errortype") or data.get("__type") or data.get("code")
    code = str(code).split(":")[0].split("#")[-1] if code else None
    message = data.get("message") or data.get("Message")
    return code, str(message) if message is not None else None


def error_type_for(code: str | None, status: int) -> str:
    """latlab's error type for an AWS error code (status decides for unknown codes)."""
    if code:
        found = AWS_ERROR_TYPES.get(code[:1].upper() + code[1:])
        if found:
            return found
    return error_type_for_status(status)


def record_aws_error(m: Measurement, status: int, headers: Mapping[str, str], body: bytes) -> None:
    """Fill the error fields from a non-2xx rest-json response."""
    code, message = error_code(headers, body)
    m.error_type = error_type_for(code, status)
    detail = message if message is not None else repr(body[:200])
    m.error_message = clip(f"{status} {code or 'HTTP error'}: {detail}")


def stream_exception(m: Measurement, kind: str, message: Any) -> None:
    """An exception inside a 200 event stream (modelStreamErrorException, throttling…)."""
    m.error_type = "stream_error"
    m.error_message = clip(f"{kind}: {message}")


def apply_bedrock_extras(m: Measurement, data: Mapping[str, Any]) -> None:
    """Bedrock's invocation metrics and guardrail action, wherever a body/event carries them."""
    metrics = data.get(METRICS_KEY)
    if isinstance(metrics, Mapping):
        m.server_latency_ms = _float(metrics.get("invocationLatency"), m.server_latency_ms)
        m.server_first_byte_ms = _float(metrics.get("firstByteLatency"), m.server_first_byte_ms)
        apply_usage(m, {"input_tokens": metrics.get("inputTokenCount"),
                        "output_tokens": metrics.get("outputTokenCount"),
                        "cache_read_input_tokens": metrics.get("cacheReadInputTokenCount"),
                        "cache_creation_input_tokens": metrics.get("cacheWriteInputTokenCount")})
    if data.get(GUARDRAIL_ACTION_KEY) is not None:
        m.guardrail_action = str(data[GUARDRAIL_ACTION_KEY])


def _float(value: Any, default: float | None) -> float | None:
    return float(value) if value is not None else default


def apply_invoke_headers(m: Measurement, headers: Mapping[str, str]) -> None:
    """InvokeModel's latency and token headers (lower-cased keys)."""
    m.server_latency_ms = _float(headers.get("x-amzn-bedrock-invocation-latency"),
                                 m.server_latency_ms)
    for header, column in (("x-amzn-bedrock-input-token-count", "input_tokens"),
                           ("x-amzn-bedrock-output-token-count", "output_tokens")):
        if headers.get(header) is not None and getattr(m, column) is None:
            setattr(m, column, int(headers[header]))


def read_invoke(body: bytes, headers: Mapping[str, str], clock: StreamClock,
                m: Measurement) -> None:
    """A whole InvokeModel body: the Anthropic message plus Bedrock's headers."""
    message = json.loads(body)
    read_message(message, clock, m)
    apply_bedrock_extras(m, message)
    apply_invoke_headers(m, headers)


def apply_converse_usage(m: Measurement, usage: Mapping[str, Any]) -> None:
    apply_usage(m, {"input_tokens": usage.get("inputTokens"),
                    "output_tokens": usage.get("outputTokens"),
                    "cache_read_input_tokens": usage.get("cacheReadInputTokens"),
                    "cache_creation_input_tokens": usage.get("cacheWriteInputTokens")})


def converse_guardrail_action(m: Measurement, spec: RequestSpec) -> None:
    if spec.guardrail and m.error_type is None:
        m.guardrail_action = "INTERVENED" if m.stop_reason == "guardrail_intervened" else "NONE"


def read_converse(data: Mapping[str, Any], spec: RequestSpec, clock: StreamClock,
                  m: Measurement) -> None:
    """A whole Converse response (its one content token arrives with the body)."""
    apply_converse_usage(m, data.get("usage") or {})
    m.stop_reason = data.get("stopReason")
    m.server_latency_ms = _float((data.get("metrics") or {}).get("latencyMs"), None)
    clock.t_first_token = clock.t_last_token = clock.t_done
    converse_guardrail_action(m, spec)


@dataclass
class InvokeEvents:
    """InvokeModelWithResponseStream: Anthropic events from ``chunk`` frames, plus metrics."""

    clock: StreamClock
    measurement: Measurement
    events: AnthropicStream = field(init=False)

    def __post_init__(self) -> None:
        self.events = AnthropicStream(self.clock, self.measurement)

    @property
    def finished(self) -> bool:
        return self.events.finished

    def event(self, name: str, payload: Mapping[str, Any], arrival_ns: int) -> None:
        """One decoded stream event; only ``chunk`` matters (others are skipped, as boto3 does)."""
        if name == "chunk":
            raw = payload["bytes"]
            data = json.loads(base64.b64decode(raw) if isinstance(raw, str) else raw)
            self.events.handle(str(data.get("type")), data, arrival_ns)
            apply_bedrock_extras(self.measurement, data)

    def fail(self, kind: str, message: Any) -> None:
        stream_exception(self.measurement, kind, message)
        self.events.finished = True

    def close(self) -> None:
        self.events.close()


@dataclass
class ConverseEvents:
    """ConverseStream: content deltas are tokens; ``metadata`` (usage, latency) ends it."""

    clock: StreamClock
    measurement: Measurement
    spec: RequestSpec
    finished: bool = False

    def event(self, name: str, payload: Mapping[str, Any], arrival_ns: int) -> None:
        m = self.measurement
        if name == "contentBlockDelta":
            self.clock.token(arrival_ns)
        elif name == "messageStop":
            m.stop_reason = payload.get("stopReason")
        elif name == "metadata":
            apply_converse_usage(m, payload.get("usage") or {})
            m.server_latency_ms = _float((payload.get("metrics") or {}).get("latencyMs"), None)
            converse_guardrail_action(m, self.spec)
            self.finished = True

    def fail(self, kind: str, message: Any) -> None:
        stream_exception(self.measurement, kind, message)
        self.finished = True

    def close(self) -> None:
        if not self.finished and self.measurement.error_type is None:
            self.measurement.error_type = "truncated"
            self.measurement.error_message = "stream ended without its metadata event"


StreamEvents = InvokeEvents | ConverseEvents


def stream_events(op: str, spec: RequestSpec, clock: StreamClock, m: Measurement) -> StreamEvents:
    if op.startswith("converse"):
        return ConverseEvents(clock, m, spec)
    return InvokeEvents(clock, m)


@dataclass
class FrameReader:
    """Raw event-stream bytes → botocore's ``EventStreamBuffer`` → events.

    A bad CRC or malformed frame raises botocore's ``ParserError`` (→ ``protocol_error``).
    """

    events: StreamEvents
    buffer: EventStreamBuffer = field(default_factory=EventStreamBuffer)

    def feed(self, data: bytes, arrival_ns: int) -> None:
        self.buffer.add_data(data)
        for message in self.buffer:
            headers = cast(Mapping[str, Any], message.headers)  # botocore-stubs say int
            self.dispatch(headers, message.payload, arrival_ns)
            if self.events.finished:
                return

    @property
    def finished(self) -> bool:
        return self.events.finished

    def close(self) -> None:
        """Flag a stream that never reached its terminal event."""
        self.events.close()

    def dispatch(self, headers: Mapping[str, Any], payload: bytes, arrival_ns: int) -> None:
        kind = headers.get(":message-type")
        if kind == "event":
            self.events.event(str(headers.get(":event-type")), json.loads(payload), arrival_ns)
        elif kind == "exception":
            message = json.loads(payload or b"{}").get("message")
            self.events.fail(str(headers.get(":exception-type")), message)
        elif kind == "error":
            self.events.fail(str(headers.get(":error-code")), headers.get(":error-message"))


# ---------------------------------------------------------------------------- httpx client


class BedrockProvider:
    """Times Bedrock requests on an injected ``httpx.AsyncClient``, signed with SigV4."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, signer: RequestSigner,
                 api: str = "invoke_stream", transport: str = "aiohttp") -> None:
        self.client, self.signer, self.api, self.transport = client, signer, api, transport
        self.base_url = base_url.rstrip("/")

    def prepare(self, spec: RequestSpec, op: str) -> tuple[str, bytes, dict[str, str]]:
        """URL, body and signed headers of one request (signed before the clock starts)."""
        url = f"{self.base_url}/model/{model_path(spec.model_id)}/{op}"
        body, headers = request_parts(spec, op)
        url, signed = self.signer.sign(url, body, headers)
        return url, body, signed

    async def send(self, spec: RequestSpec) -> Measurement:
        return await timed_exchange(partial(self._exchange, spec), spec.timeout_s)

    async def _exchange(self, spec: RequestSpec, clock: StreamClock, m: Measurement,
                        conn: ConnectionTiming) -> None:
        op = operation(self.api, spec.stream)
        url, body, headers = self.prepare(spec, op)
        extensions = {"trace": httpcore_trace(conn)} if self.transport == "httpcore" else {}
        clock.t_start = now_ns()
        async with open_stream(self.client, "POST", url, content=body, headers=headers,
                               extensions=extensions) as response:
            clock.headers()
            m.status = response.status_code
            m.request_id = response.headers.get("x-amzn-requestid")
            read_ratelimit_headers(m, response.headers)  # retry-after, where one is sent
            if response.status_code != 200:
                record_aws_error(m, response.status_code, response.headers, await response.aread())
                return
            await self._read_body(response, op, spec, clock, m)

    async def _read_body(self, response: StreamResponse, op: str, spec: RequestSpec,
                         clock: StreamClock, m: Measurement) -> None:
        if op.endswith("stream"):
            await read_stream(response, FrameReader(stream_events(op, spec, clock, m)), clock)
            return
        body = await response.aread()
        clock.done()
        if op == "converse":
            read_converse(json.loads(body), spec, clock, m)
        else:
            read_invoke(body, response.headers, clock, m)

    async def aclose(self) -> None:
        await self.client.aclose()


# ---------------------------------------------------------------------------- boto3 client


def boto3_config(cfg: Mapping[str, Any], read_timeout_s: float) -> Config:
    """Retries off (latlab retries itself), a pool as large as the allowed connections."""
    pool = int(cfg.get("max_connections", 0)) or UNBOUNDED_POOL
    return Config(max_pool_connections=pool, retries={"total_max_attempts": 1, "mode": "standard"},
                  connect_timeout=float(cfg.get("connect_timeout_s", 10.0)),
                  read_timeout=read_timeout_s, tcp_keepalive=True)


def boto3_session(cfg: Mapping[str, Any], endpoint: Endpoint) -> Any:
    """A boto3 session: dummy keys on the emulator, the real chain otherwise."""
    import boto3

    if endpoint.emulated or endpoint.credentials in (None, DUMMY_CREDENTIALS):
        creds = (endpoint.credentials or DUMMY_CREDENTIALS).get_frozen_credentials()
        return boto3.Session(aws_access_key_id=creds.access_key,
                             aws_secret_access_key=creds.secret_key,
                             aws_session_token=creds.token, region_name=region_of(cfg))
    return boto3.Session(profile_name=cfg.get("profile_name") or None, region_name=region_of(cfg))


def boto3_kwargs(spec: RequestSpec, op: str) -> dict[str, Any]:
    """Keyword arguments of the boto3 call for ``op``."""
    if op.startswith("converse"):
        return {"modelId": spec.model_id, **converse_body(spec)}
    kwargs: dict[str, Any] = {"modelId": spec.model_id, "body": json.dumps(invoke_body(spec)),
                              "contentType": "application/json", "accept": "application/json"}
    if spec.guardrail:
        kwargs.update(guardrailIdentifier=str(spec.guardrail["identifier"]),
                      guardrailVersion=str(spec.guardrail["version"]),
                      trace="ENABLED" if spec.guardrail.get("trace") else "DISABLED")
    return kwargs


def classify_boto3(exc: BaseException, headers_seen: bool) -> tuple[str, str]:
    """(error_type, message) for an exception raised by a boto3 call or its stream."""
    if isinstance(exc, EventStreamError):
        error = exc.response.get("Error", {})
        return "stream_error", clip(f"{error.get('Code')}: {error.get('Message')}")
    if isinstance(exc, ClientError):
        error, meta = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {})
        status = int(meta.get("HTTPStatusCode") or 0)
        return (error_type_for(error.get("Code"), status),
                clip(f"{status} {error.get('Code')}: {error.get('Message')}"))
    return boto3_transport_error(exc, headers_seen), describe(exc)


def boto3_transport_error(exc: BaseException, headers_seen: bool) -> str:
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError | TimeoutError
                  | urllib3.exceptions.TimeoutError) or "timed out" in str(exc).lower():
        return "timeout"  # a stall mid-stream reaches boto3 as urllib3's read timeout
    if isinstance(exc, EndpointConnectionError):
        return "connect_error"
    if isinstance(exc, ParserError | ValueError | KeyError):
        return "protocol_error"
    if isinstance(exc, HTTPClientError | urllib3.exceptions.HTTPError | ConnectionError):
        return "truncated" if headers_seen else "connection_reset"
    return "protocol_error"


class Boto3BedrockProvider:
    """The plain boto3 client in worker threads, each event stamped as boto3 yields it."""

    def __init__(self, cfg: Mapping[str, Any], endpoint: Endpoint, api: str) -> None:
        self.cfg, self.api, self.endpoint = dict(cfg), api, endpoint
        self.session = boto3_session(cfg, endpoint)
        workers = int(cfg.get("max_connections", 0)) or UNBOUNDED_POOL
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="latlab-bedrock")
        self.clients: dict[float, Any] = {}

    def client_for(self, timeout_s: float) -> Any:
        """One boto3 client per read timeout (= ``workload.timeout_s``), made on first use."""
        if timeout_s not in self.clients:
            self.clients[timeout_s] = self.session.client(
                "bedrock-runtime", endpoint_url=self.endpoint.base_url,
                config=boto3_config(self.cfg, timeout_s))
        return self.clients[timeout_s]

    async def send(self, spec: RequestSpec) -> Measurement:
        client = self.client_for(spec.timeout_s)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, timed_boto3_call, client, spec, self.api)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.executor.shutdown, True)
        for client in self.clients.values():
            client.close()


def timed_boto3_call(client: Any, spec: RequestSpec, api: str) -> Measurement:
    """One boto3 request, timed in the calling (worker) thread."""
    m, clock, op = Measurement(), StreamClock(), operation(api, spec.stream)
    deadline = time.monotonic() + spec.timeout_s
    try:
        clock.t_start = now_ns()
        response = getattr(client, BOTO3_METHODS[op])(**boto3_kwargs(spec, op))
        clock.headers()
        meta = response["ResponseMetadata"]
        m.status, m.request_id = meta.get("HTTPStatusCode"), meta.get("RequestId")
        read_boto3(response, op, spec, clock, m, deadline)
    except Exception as exc:  # noqa: BLE001 - inside a sweep every failure is a row
        m.error_type, m.error_message = classify_boto3(exc, clock.t_headers is not None)
        m.status = m.status or _client_error_status(exc)
        if isinstance(exc, ClientError):
            read_ratelimit_headers(m, exc.response.get("ResponseMetadata", {})
                                   .get("HTTPHeaders", {}))
    if clock.t_done is None:
        clock.done()
    finish_measurement(m, clock, ConnectionTiming())
    return m


def _client_error_status(exc: BaseException) -> int | None:
    if isinstance(exc, ClientError) and not isinstance(exc, EventStreamError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    return None


def read_boto3(response: Mapping[str, Any], op: str, spec: RequestSpec, clock: StreamClock,
               m: Measurement, deadline: float) -> None:
    """Read the body or iterate the event stream (checking the deadline per event)."""
    if op == "converse":
        clock.done()
        read_converse(response, spec, clock, m)
    elif op == "invoke":
        body = response["body"].read()
        clock.done()
        read_invoke(body, response["ResponseMetadata"].get("HTTPHeaders", {}), clock, m)
    else:
        stream = response["stream" if op.startswith("converse") else "body"]
        iterate_events(stream, stream_events(op, spec, clock, m), deadline)
        clock.done()


def iterate_events(stream: Any, events: StreamEvents, deadline: float) -> None:
    """boto3 yields one-key dicts (``{"chunk": {...}}``); exceptions raise EventStreamError."""
    try:
        for event in stream:
            arrival = now_ns()
            for name, payload in event.items():
                events.event(name, payload, arrival)
            if events.finished or time.monotonic() >= deadline:
                break
    finally:
        stream.close()
    if not events.finished and time.monotonic() >= deadline:
        raise TimeoutError("no complete answer within workload.timeout_s")
    events.close()
