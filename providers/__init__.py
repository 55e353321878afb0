"""Providers: one module per wire protocol, found by config name in ``REGISTRY``.

Each entry builds a ``runner.provider_protocol.Provider`` from the provider's
config section and a resolved endpoint. Unknown names fail listing the known ones.

    anthropic   providers/anthropic.py   Messages API over httpx (also provider=emulator)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import ConfigError, CredentialsError
from runner.provider_protocol import Provider


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to send: resolved before the first request."""

    base_url: str
    api_key: str
    emulated: bool


ProviderFactory = Callable[[Mapping[str, Any], Endpoint], Provider]


def _anthropic(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from providers.anthropic import AnthropicProvider
    from providers.http import make_http_client

    client = make_http_client(cfg.get("transport", "aiohttp"), int(cfg.get("max_connections", 0)),
                              bool(cfg.get("reuse_connections", True)))
    return AnthropicProvider(client, endpoint.base_url, endpoint.api_key,
                             cfg.get("transport", "aiohttp"))


REGISTRY: dict[str, ProviderFactory] = {"anthropic": _anthropic}

# Kinds whose config carries a wire id in the model group under this key.
MODEL_ID_KEYS: dict[str, str] = {"anthropic": "anthropic"}

# Kinds that can apply a guardrail (everything else rejects guardrail != none).
GUARDRAIL_KINDS: frozenset[str] = frozenset()

DUMMY_KEY = "latlab-emulator-dummy-key"


def factory_for(kind: str) -> ProviderFactory:
    """The factory registered under ``kind``; ConfigError listing the known kinds."""
    if kind not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"provider.kind: unknown provider {kind!r}; known: {known}")
    return REGISTRY[kind]


def resolve_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """The base URL and key for a provider config; the emulator's URL when emulated."""
    if emulator_url is not None:
        return Endpoint(emulator_url, DUMMY_KEY, emulated=True)
    env = str(cfg.get("api_key_env") or "")
    key = os.environ.get(env, "") if env else ""
    if not key:
        raise CredentialsError(
            f"provider.{cfg['name']}: no credentials: set the {env} environment variable "
            "(or run on the emulator: emulate=true)")
    return Endpoint(str(cfg["base_url"]), key, emulated=False)
