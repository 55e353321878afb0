"""The ``client`` dimension: which library sends a provider's requests.

    httpx   latlab's own (default): httpx on the chosen transport, bytes stamped on arrival
    sdk     the official SDK: ``anthropic`` (AsyncAnthropic, AsyncAnthropicBedrock,
            AsyncAnthropicVertex) or ``openai`` (AsyncOpenAI) — providers/sdk.py, whose
            build() the registry calls for every kind when ``client: sdk``
    boto3   Bedrock only: the plain boto3 client (providers/bedrock.py)

Every row records ``client`` and ``client_version`` (the version of the library that sent it).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from latlab.providers.http import make_http_client
from latlab.runner.core.errors import ConfigError

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


def http_client_for(cfg: Mapping[str, Any]) -> Any:
    """The injected HTTP client of an httpx-based provider: transport and pool from ``cfg``."""
    return make_http_client(str(cfg.get("transport", "aiohttp")),
                            int(cfg.get("max_connections", 0)),
                            bool(cfg.get("reuse_connections", True)))
