"""Rules on the composed config that JSON Schema cannot state, each raising ``ConfigError``
with one line naming the key and the fix. ``check_rules`` runs them all (from
``latlab.runner.app.run.validate``, so before Hydra writes anything and again in the job).

- numbers: NaN and infinity are never valid (JSON Schema's ranges let NaN through);
- URLs: no credentials in userinfo or in a query parameter named like a credential;
- ``provider.api``: one of the values the provider's kind reads (never silently ignored);
- SLO: each grade's p99 TTFT limit is at least its own p50 limit;
- guardrails: a real identifier and version (not ``None`` sent as the id);
- prompts: a synthetic prompt of a sane size;
- ``results_dir``: not blank.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from latlab.runner.core.errors import ConfigError
from latlab.runner.core.secrets import CREDENTIAL_NAME

APIS: dict[str, tuple[str, ...]] = {
    "anthropic": ("messages",), "openai_compat": ("chat_completions",),
    "vertex": ("raw_predict",), "bedrock": ("invoke", "invoke_stream", "converse",
                                            "converse_stream")}
MAX_SYNTHETIC_TOKENS = 1_000_000
URL_SCHEMES = ("http://", "https://", "s3://", "ws://", "wss://", "file://")


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key path, leaf value) of a nested mapping/list."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")
    else:
        yield path, node


def check_finite(cfg: Mapping[str, Any]) -> None:
    for path, value in walk(cfg):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: {value} is not a number latlab can use; "
                              "give a finite value")


def url_credential(url: str) -> str | None:
    """Why ``url`` carries a credential (userinfo or a credential-named query), or None."""
    if not url.lower().startswith(URL_SCHEMES):
        return None
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        return "has user:password@ credentials"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if CREDENTIAL_NAME.search(name.replace("-", "_")):
            return f"has a credential in its query ({name}=…)"
    return None


def check_urls(cfg: Mapping[str, Any]) -> None:
    for path, value in walk(cfg):
        reason = url_credential(value) if isinstance(value, str) else None
        if reason:
            raise ConfigError(f"{path}: the URL {reason}; remove it and give the key through "
                              "the environment (provider.api_key_env)")


def check_api(provider: Mapping[str, Any]) -> None:
    allowed = APIS.get(str(provider.get("kind")))
    api = provider.get("api")
    if allowed and api is not None and api not in allowed:
        raise ConfigError(f"provider.api: {api!r} is not read by provider kind "
                          f"{provider['kind']!r}; use {' or '.join(allowed)}")


def check_slo_order(slo: Mapping[str, Any]) -> None:
    thresholds = slo.get("thresholds")
    for grade, limits in (thresholds.items() if isinstance(thresholds, Mapping) else []):
        if not isinstance(limits, Mapping):
            continue
        p50, p99 = limits.get("ttft_p50_ms"), limits.get("ttft_p99_ms")
        if isinstance(p50, int | float) and isinstance(p99, int | float) and p99 < p50:
            raise ConfigError(f"slo.thresholds.{grade}.ttft_p99_ms: {p99} is below this "
                              f"grade's ttft_p50_ms ({p50}); a p99 limit must be >= its p50")


def check_guardrail_id(guardrail: Mapping[str, Any]) -> None:
    if guardrail.get("name") in (None, "none"):
        return
    for key in ("identifier", "version"):
        value = guardrail.get(key)
        if value is None or str(value).strip() in ("", "None", "null"):
            raise ConfigError(f"guardrail.{key}: guardrail {guardrail.get('name')!r} has no "
                              f"{key}; set guardrail.{key} (the Bedrock guardrail's {key})")


def check_prompt_size(prompt: Mapping[str, Any]) -> None:
    for key in ("synthetic_tokens", "system_synthetic_tokens"):
        value = prompt.get(key)
        if isinstance(value, int) and value > MAX_SYNTHETIC_TOKENS:
            raise ConfigError(f"prompt.{key}: {value} is too large (at most "
                              f"{MAX_SYNTHETIC_TOKENS:,}); use a smaller prompt")


def check_results_dir(cfg: Mapping[str, Any]) -> None:
    if not str(cfg.get("results_dir") or "").strip():
        raise ConfigError("results_dir: empty; give a directory (default: results)")


def check_rules(cfg: Mapping[str, Any]) -> None:
    """Every rule above, on one composed config."""
    check_results_dir(cfg)
    check_finite(cfg)
    check_urls(cfg)
    if isinstance(cfg.get("provider"), Mapping):
        check_api(cfg["provider"])
    if isinstance(cfg.get("slo"), Mapping):
        check_slo_order(cfg["slo"])
    if isinstance(cfg.get("guardrail"), Mapping):
        check_guardrail_id(cfg["guardrail"])
    if isinstance(cfg.get("prompt"), Mapping):
        check_prompt_size(cfg["prompt"])
