"""The ``client`` dimension: which library sends a provider's requests.

    httpx   latlab's own (default): httpx on the chosen transport, bytes stamped on arrival
    sdk     the official SDK: ``anthropic`` (AsyncAnthropic, AsyncAnthropicBedrock,
            AsyncAnthropicVertex) or ``openai`` (AsyncOpenAI) — providers/sdk.py
    boto3   Bedrock only: the plain boto3 client (providers/bedrock.py)

Every row records ``client`` and ``client_version`` (the version of the library that sent it).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from latlab.providers import Endpoint
from latlab.providers.http import make_http_client
from latlab.runner.core.errors import ConfigError
from latlab.runner.core.protocol import Provider

CLIENTS: dict[str, tuple[str, ...]] = {
    "anthropic": ("httpx", "sdk"),
    "openai_compat": ("httpx", "sdk"),
    "vertex": ("httpx", "sdk"),
    "bedrock": ("httpx", "boto3", "sdk"),
}
SDK_PACKAGE = {"openai_compat": "openai"}  # every other kind's SDK is `anthropic`


def client_of(cfg: Mapping[str, Any]) -> str:
    """``provider.client`` (default ``httpx``); ConfigError when the kind has no such client."""
    client = str(cfg.get("client") or "httpx")
    allowed = CLIENTS.get(str(cfg["kind"]), ("httpx",))
    if client not in allowed:
        raise ConfigError(f"provider.client: {client!r} is not a client of provider "
                          f"{cfg['name']!r}; use {', '.join(allowed)}")
    return client


def package_of(kind: str, client: str) -> str:
    """The distribution whose version the rows record for this client."""
    if client == "sdk":
        return SDK_PACKAGE.get(kind, "anthropic")
    return client


@functools.cache
def client_version(kind: str, client: str) -> str | None:
    """The installed version of the client library (None if it is not installed)."""
    try:
        return metadata.version(package_of(kind, client))
    except metadata.PackageNotFoundError:
        return None


def quiet_sdk_logs() -> None:
    """The SDKs' HTTP client logs every request at INFO, which Hydra's logging would print."""
    for name in ("httpx", "httpx2"):  # recent SDKs ship their HTTP client as `httpx2`
        logging.getLogger(name).setLevel(logging.WARNING)


def sdk_missing(package: str) -> ConfigError:
    return ConfigError(f"provider.client: sdk needs the {package!r} package "
                       f"(pip install {package}, or pip install 'latlab[sdk]')")


def _http(cfg: Mapping[str, Any]) -> Any:
    return make_http_client(str(cfg.get("transport", "aiohttp")),
                            int(cfg.get("max_connections", 0)),
                            bool(cfg.get("reuse_connections", True)))


def build_anthropic(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.anthropic import AnthropicProvider

    if client_of(cfg) == "sdk":
        try:
            import anthropic
        except ImportError as exc:
            raise sdk_missing("anthropic") from exc
        from latlab.providers.sdk import AnthropicSdkProvider

        quiet_sdk_logs()

        return AnthropicSdkProvider(anthropic.AsyncAnthropic(
            api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=0))
    return AnthropicProvider(_http(cfg), endpoint.base_url, endpoint.api_key or "",
                             str(cfg.get("transport", "aiohttp")))


def build_openai_compat(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.openai_compat import OpenAICompatProvider, chat_url

    if client_of(cfg) == "sdk":
        try:
            import openai
        except ImportError as exc:
            raise sdk_missing("openai") from exc
        from latlab.providers.sdk import OpenAISdkProvider

        quiet_sdk_logs()

        base = chat_url(endpoint.base_url).removesuffix("/chat/completions")
        return OpenAISdkProvider(openai.AsyncOpenAI(
            api_key=endpoint.api_key or "none", base_url=base, max_retries=0))
    return OpenAICompatProvider(_http(cfg), endpoint.base_url, endpoint.api_key or "",
                                str(cfg.get("transport", "aiohttp")))


def build_vertex(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.vertex import (
        BearerToken,
        VertexAuth,
        VertexProvider,
        adc_token,
        region_of,
    )

    auth: VertexAuth = endpoint.credentials
    project, region = auth.project, region_of(cfg)
    if client_of(cfg) == "sdk":
        try:
            import anthropic
        except ImportError as exc:
            raise sdk_missing("anthropic") from exc
        from latlab.providers.sdk import AnthropicSdkProvider

        quiet_sdk_logs()

        return AnthropicSdkProvider(anthropic.AsyncAnthropicVertex(  # ADC: the SDK refreshes
            region=region, project_id=project, access_token=None if auth.adc else endpoint.api_key,
            base_url=endpoint.base_url.rstrip("/") + "/v1", max_retries=0))
    token = BearerToken(endpoint.api_key or "", adc_token if auth.adc else None)
    return VertexProvider(_http(cfg), endpoint.base_url, token, project, region,
                          str(cfg.get("transport", "aiohttp")))


def build_bedrock_sdk(cfg: Mapping[str, Any], endpoint: Endpoint, region: str) -> Provider:
    """``AsyncAnthropicBedrock`` (InvokeModel[WithResponseStream] only) with SigV4 credentials."""
    try:
        import anthropic
    except ImportError as exc:
        raise sdk_missing("anthropic") from exc
    from latlab.providers.sdk import AnthropicSdkProvider

    quiet_sdk_logs()
    if str(cfg.get("api", "invoke_stream")).startswith("converse"):
        raise ConfigError("provider.client: sdk speaks InvokeModel only; use provider.api=invoke "
                          "or invoke_stream (or client=httpx/boto3 for Converse)")
    if endpoint.credentials is None:
        raise ConfigError("provider.client: sdk needs AWS SigV4 credentials, not a Bedrock "
                          "API key; use client=httpx or boto3")
    frozen = endpoint.credentials.get_frozen_credentials()
    return AnthropicSdkProvider(anthropic.AsyncAnthropicBedrock(
        aws_access_key=frozen.access_key, aws_secret_key=frozen.secret_key,
        aws_session_token=frozen.token, aws_region=region, base_url=endpoint.base_url,
        max_retries=0))
