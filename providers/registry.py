"""The provider registry: a wire protocol found by its config name (``provider.kind``).

Each kind names the module that implements it. That module defines

    build(cfg, endpoint) -> Provider                 the provider for one provider config
    resolve_endpoint(cfg, emulator_url) -> Endpoint  optional; default: a key from ``api_key_env``

and is imported only when a run uses the kind (botocore alone costs ~0.2 s to import).
An unknown name fails listing the known ones. To add a provider: docs/architecture.md.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from latlab.providers.clients import client_of
from latlab.runner.core.errors import ConfigError, CredentialsError
from latlab.runner.core.protocol import DUMMY_KEY, Endpoint, Provider


def env_key_endpoint(cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
    """Base URL plus a key read from the environment variable named by ``api_key_env``."""
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


@dataclass(frozen=True)
class ProviderKind:
    """Everything the runner needs to know about one wire protocol."""

    module: str  # latlab.providers.<module>: its build() and, if any, resolve_endpoint()
    model_id_key: str = "anthropic"  # which id of the model group (conf/model/*.yaml) it sends
    guardrails: bool = False  # whether it can apply a guardrail (conf/guardrail/)

    def implementation(self) -> ModuleType:
        return importlib.import_module(f"latlab.providers.{self.module}")

    def build(self, cfg: Mapping[str, Any], endpoint: Endpoint) -> Provider:
        """The provider for ``cfg``; ``client: sdk`` is built by providers/sdk.py."""
        sdk = client_of(cfg) == "sdk"
        module = importlib.import_module("latlab.providers.sdk") if sdk else self.implementation()
        provider: Provider = module.build(cfg, endpoint)
        return provider

    def resolve_endpoint(self, cfg: Mapping[str, Any], emulator_url: str | None) -> Endpoint:
        resolve = getattr(self.implementation(), "resolve_endpoint", env_key_endpoint)
        endpoint: Endpoint = resolve(cfg, emulator_url)
        return endpoint


REGISTRY: dict[str, ProviderKind] = {
    "anthropic": ProviderKind("anthropic"),
    "bedrock": ProviderKind("bedrock", model_id_key="bedrock", guardrails=True),
    "openai_compat": ProviderKind("openai_compat", model_id_key="openai"),
    "vertex": ProviderKind("vertex", model_id_key="vertex"),
}


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
