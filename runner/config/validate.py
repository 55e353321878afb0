"""Validate the composed config before the first request.

Three layers, each raising ``ConfigError`` with one line that names the key path:
1. JSON Schema (``runner/config.schema.json``, published): types, ranges, unknown keys.
2. Cross-field rules: a model id for the provider, guardrail support, matrix axes, SLO order.
3. Secrets: a key-like value given as a config value or override is refused.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.secrets import CREDENTIAL_NAME, KEY_SHAPES, redact

MATRIX_GROUPS = ("provider", "model", "prompt", "guardrail", "profile")
SECRET_KEY = CREDENTIAL_NAME  # one list of credential-looking names: runner/core/secrets.py


@cache
def config_schema() -> dict[str, Any]:
    """The published JSON Schema of the composed config."""
    text = resources.files("latlab.runner.config").joinpath("config.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _key_path(error: ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


def _describe(error: ValidationError) -> str:
    path = _key_path(error)
    if error.validator == "additionalProperties":
        unknown = re.findall(r"'([^']+)'", error.message.split("(")[-1])
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        prefix = f"{path}." if path != "<root>" else ""
        name = unknown[0] if unknown else "?"
        close = difflib.get_close_matches(name, list(error.schema.get("properties", {})), n=1)
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        return f"{prefix}{name}: unknown key ({hint}allowed: {allowed})"
    if error.validator == "propertyNames":
        return f"{path}: {error.instance!r} is not a matrix axis (use a group name such as " \
               f"model, or a workload.* key)"
    if error.validator == "not" and path.endswith("api_key"):
        return f"{path}: keys come from the environment only; set provider.api_key_env"
    return f"{path}: {error.message}"


def validate_schema(cfg: Mapping[str, Any]) -> None:
    """Raise ConfigError for the first (most relevant) schema violation."""
    validator = jsonschema.Draft202012Validator(config_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))


def check_model_for_provider(cfg: Mapping[str, Any], id_keys: Mapping[str, str]) -> str:
    """The model's wire id on this provider, or ConfigError naming the missing key."""
    kind = cfg["provider"]["kind"]
    key = id_keys.get(kind, kind)
    model_id = (cfg["model"].get("ids") or {}).get(key)
    if not model_id:
        raise ConfigError(
            f"model.ids.{key}: model {cfg['model']['name']!r} has no id for provider "
            f"{cfg['provider']['name']!r}; add it to the model file")
    return str(model_id)


def check_guardrail(cfg: Mapping[str, Any], guardrail_kinds: Iterable[str]) -> None:
    """A guardrail on a provider that has none is an error, never a silent no-op."""
    if cfg["guardrail"]["name"] != "none" and cfg["provider"]["kind"] not in guardrail_kinds:
        raise ConfigError(
            f"guardrail: {cfg['guardrail']['name']!r} needs a provider with guardrails "
            f"(bedrock); provider {cfg['provider']['name']!r} has none: use guardrail=none")


def find_secrets(node: Any, path: str = "") -> list[str]:
    """Key paths whose value looks like a credential (by key name or by value shape)."""
    found: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if secret_name(str(key)) and value not in (None, ""):
                found.append(sub)
            found.extend(find_secrets(value, sub))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(find_secrets(value, f"{path}[{i}]"))
    elif isinstance(node, str) and looks_secret(node):
        found.append(path)
    return found


def looks_secret(value: str) -> bool:
    """A key-shaped string, a known secret (or an 8+ character piece of one), a URL with
    credentials, or a mapping literal with a credential-named key (``{Authorization: …}``)."""
    from latlab.runner.config.rules import url_credential

    names = re.findall(r"([A-Za-z0-9_-]+)\s*:(?!//)", value)
    return (bool(KEY_SHAPES.search(value)) or redact(value) != value
            or url_credential(value) is not None
            or any(secret_name(n) for n in names))


def secret_name(key: str) -> bool:
    """True for a key (or its last dotted part) named like a credential; ``*_env`` names a
    variable, not a value."""
    last = key.lstrip("+~").rsplit(".", 1)[-1]
    return bool(SECRET_KEY.search(last)) and not last.endswith("_env")


def check_overrides_for_secrets(overrides: Iterable[str]) -> None:
    """Hydra saves overrides verbatim, so a credential must never be one: by its key (an
    Authorization or x-api-key header, an AWS secret or session key, also under
    ``hydra.job.env_set``) or by its value."""
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if secret_name(key) or looks_secret(value):
            raise ConfigError(f"{key}: looks like a credential; secrets come only from the "
                              "environment or credential files, never from overrides")
