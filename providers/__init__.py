"""Providers: one module per wire protocol, found by ``provider.kind`` in ``REGISTRY``.

Each ``ProviderKind`` knows how to build a ``latlab.runner.core.protocol.Provider`` from the
provider's config section and a resolved ``Endpoint``, how to find its credentials
(preflight, before any request), which model id key it reads from the model group,
and whether it can apply a guardrail. Unknown kinds fail listing the known ones.

    anthropic   providers/anthropic.py   Messages API over httpx (also provider=emulator)
    bedrock     providers/bedrock.py     AWS Bedrock Runtime: InvokeModel[WithResponseStream],
                                         Converse[Stream]; SigV4; guardrails
    openai_compat providers/openai_compat.py  any OpenAI-compatible /v1/chat/completions
    vertex      providers/vertex.py      Claude on Vertex AI: rawPredict / streamRawPredict
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from latlab.runner.core.errors import ConfigError, CredentialsError
from latlab.runner.core.protocol import Provider

DUMMY_KEY = "latlab-emulator-dummy-key"


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to send: resolved before the first request.

    ``api_key`` is a bearer/API key where the protocol uses one; ``credentials`` holds
    anything richer (botocore credentials for SigV4). Neither is ever written anywhere.
    """

    base_url: str
    api_key: str | None
    emulated: bool
    credentials: Any = None


ProviderFactory = Callable[[Mapping[str, Any], Endpoint], Provider]
EndpointResolver = Callable[[Mapping[str, Any], "str | None"], Endpoint]


def env_key_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Base URL plus a key read from the environment variable named by ``api_key_env``."""
    from latlab.providers.clients import client_of

    client_of(cfg)  # an unknown provider.client fails here, before any request
    if emulator_url is not None:
        return Endpoint(emulator_url, DUMMY_KEY, emulated=True)
    env = str(cfg.get("api_key_env") or "")
    key = os.environ.get(env, "") if env else ""
    if not key:
        raise CredentialsError(
            f"provider.{cfg['name']}: no credentials: set the {env} environment variable "
            "(or run on the emulator: emulate=true)")
    return Endpoint(str(cfg["base_url"]), key, emulated=False)


def _anthropic(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.clients import build_anthropic  # client: httpx (default) or sdk

    return build_anthropic(cfg, endpoint)


@dataclass(frozen=True)
class ProviderKind:
    """Everything the runner needs to know about one wire protocol."""

    build: ProviderFactory
    resolve_endpoint: EndpointResolver = env_key_endpoint
    model_id_key: str = "anthropic"
    guardrails: bool = False


def _bedrock(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.bedrock import build

    return build(cfg, endpoint)


def bedrock_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Emulated: dummy SigV4 credentials; real: the botocore credential chain (preflight)."""
    from latlab.providers.bedrock import bedrock_endpoint as resolve

    return resolve(cfg, emulator_url)


REGISTRY: dict[str, ProviderKind] = {
    "anthropic": ProviderKind(build=_anthropic),
    "bedrock": ProviderKind(build=_bedrock, resolve_endpoint=bedrock_endpoint,
                            model_id_key="bedrock", guardrails=True),
}


def _openai_compat(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.clients import build_openai_compat

    return build_openai_compat(cfg, endpoint)


def _vertex(cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
    from latlab.providers.clients import build_vertex

    return build_vertex(cfg, endpoint)


def vertex_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Project and OAuth token (env var, then google-auth ADC), or the emulator's dummy."""
    from latlab.providers.vertex import vertex_endpoint as resolve

    return resolve(cfg, emulator_url)


REGISTRY["openai_compat"] = ProviderKind(build=_openai_compat, model_id_key="openai")
REGISTRY["vertex"] = ProviderKind(build=_vertex, resolve_endpoint=vertex_endpoint,
                                  model_id_key="vertex")


def kind_for(name: str) -> ProviderKind:
    """The provider kind registered under ``name``; ConfigError listing the known kinds."""
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"provider.kind: unknown provider {name!r}; known: {known}")
    return REGISTRY[name]


def model_id_keys() -> dict[str, str]:
    return {name: kind.model_id_key for name, kind in REGISTRY.items()}


def guardrail_kinds() -> frozenset[str]:
    return frozenset(name for name, kind in REGISTRY.items() if kind.guardrails)
