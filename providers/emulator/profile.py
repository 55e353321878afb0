"""Latency profiles: per-model lognormal distributions and a fault mix.

YAML layout (see ``conf/profile/*.yaml``)::

    name: default
    seed: 0
    models:                      # substring of the model id → timings; first match wins
      haiku: {ttfb_ms: {median: 40, sigma: 0.2}, ttft_ms: {...}, itl_ms: {...},
              output_tokens: 60}
      default: {...}             # last resort
    faults: {error_rate: 0.0, kinds: {overloaded: 1.0}}
    bedrock:                     # optional: Bedrock routes only, added before the headers
      overhead_ms: {haiku: {median: 700, sigma: 0.15}, default: {...}}  # or one {median, sigma}
      server_share: 1.0          # share of the overhead inside Bedrock's reported latency
    guardrail:                   # optional: requests that carry a guardrail (Bedrock routes)
      overhead_ms: {median: 800, sigma: 0.2}
      server_share: 0.96
      intervene_rate: 0.0        # share of guarded requests the guardrail blocks
    capacity: {slots: 8, max_queue: 32, reject: overloaded}  # optional: capacity.py
    prompt_cache: {ttl_s: 300, prefill_ms_per_1k_tokens: 25}  # optional: prompt_cache.py
    replies: [{contains: "small or large", text: "small"}]   # optional: replies.py
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from latlab.providers.emulator.capacity import CapacityProfile
from latlab.providers.emulator.prompt_cache import CacheProfile
from latlab.providers.emulator.ratelimit import RateLimitProfile
from latlab.providers.emulator.replies import ReplyRule, parse_replies

FAULT_KINDS: tuple[str, ...] = (
    "rate_limited",  # HTTP 429 rate_limit_error + retry-after: 1
    "overloaded",  # HTTP 529 overloaded_error
    "server_error",  # HTTP 500 api_error
    "stream_error",  # HTTP 200 stream, a few deltas, then `event: error` (overloaded_error)
    "disconnect",  # connection closed without any response
    "truncate",  # stream cut after a few deltas: no message_stop, connection closed
    "stall",  # headers sent, then nothing (until the client gives up)
)

DEFAULT_MODEL_KEY = "default"


@dataclass(frozen=True)
class Distribution:
    """Lognormal in milliseconds: ``median * exp(sigma * N(0, 1))``; sigma 0 means fixed."""

    median: float
    sigma: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.median) or self.median < 0:
            raise ValueError(f"median must be a finite number >= 0, got {self.median!r}")
        if not math.isfinite(self.sigma) or self.sigma < 0:
            raise ValueError(f"sigma must be a finite number >= 0, got {self.sigma!r}")

    def sample(self, rng: random.Random) -> float:
        """One draw. Always consumes one normal variate so draw order never depends on sigma."""
        z = rng.gauss(0.0, 1.0)
        return self.median * math.exp(self.sigma * z) if self.sigma else self.median

    @classmethod
    def parse(cls, value: Any, where: str) -> Distribution:
        """From ``{median, sigma}`` or a bare number (fixed)."""
        if isinstance(value, bool):
            raise ValueError(f"{where}: expected a number or {{median, sigma}}, got {value!r}")
        if isinstance(value, int | float):
            return cls(float(value), 0.0)
        if not isinstance(value, Mapping) or "median" not in value:
            raise ValueError(f"{where}: expected {{median, sigma}}, got {value!r}")
        extra = set(value) - {"median", "sigma"}
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}")
        return cls(float(value["median"]), float(value.get("sigma", 0.0)))


@dataclass(frozen=True)
class ModelProfile:
    """Timings for the models whose id matches one ``models`` key."""

    ttfb_ms: Distribution
    ttft_ms: Distribution
    itl_ms: Distribution
    output_tokens: int

    def __post_init__(self) -> None:
        if self.output_tokens < 1:
            raise ValueError(f"output_tokens must be >= 1, got {self.output_tokens}")

    @classmethod
    def parse(cls, value: Any, where: str) -> ModelProfile:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        keys = ("ttfb_ms", "ttft_ms", "itl_ms", "output_tokens")
        missing = [k for k in keys if k not in value]
        extra = set(value) - set(keys)
        if missing or extra:
            raise ValueError(f"{where}: missing keys {missing}, unknown keys {sorted(extra)}")
        return cls(
            ttfb_ms=Distribution.parse(value["ttfb_ms"], f"{where}.ttfb_ms"),
            ttft_ms=Distribution.parse(value["ttft_ms"], f"{where}.ttft_ms"),
            itl_ms=Distribution.parse(value["itl_ms"], f"{where}.itl_ms"),
            output_tokens=int(value["output_tokens"]),
        )


@dataclass
class FaultProfile:
    """Share of requests that fail and the relative weights of the fault kinds."""

    error_rate: float = 0.0
    kinds: dict[str, float] = field(default_factory=lambda: {"overloaded": 1.0})

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"faults.error_rate must be in [0, 1], got {self.error_rate}")
        for kind, weight in self.kinds.items():
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
            if not weight >= 0:
                raise ValueError(f"fault weight for {kind!r} must be >= 0, got {weight}")
        if self.error_rate > 0 and not any(w > 0 for w in self.kinds.values()):
            raise ValueError("faults.error_rate > 0 but no fault kind has a positive weight")

    @classmethod
    def parse(cls, value: Any) -> FaultProfile:
        if value is None:
            return cls(0.0, {})
        if not isinstance(value, Mapping):
            raise ValueError(f"faults: expected a mapping, got {value!r}")
        kinds = value.get("kinds") or {}
        if not isinstance(kinds, Mapping):
            raise ValueError(f"faults.kinds: expected a mapping, got {kinds!r}")
        weights = {str(k): float(w) for k, w in kinds.items()}
        return cls(float(value.get("error_rate", 0.0)), weights)

    def draw(self, rng: random.Random) -> str | None:
        """A fault kind for one request, or None. Always consumes two uniforms."""
        roll, pick = rng.random(), rng.random()
        if roll >= self.error_rate:
            return None
        kinds = [(k, w) for k, w in self.kinds.items() if w > 0]
        total = sum(w for _, w in kinds)
        acc = 0.0
        for kind, weight in kinds:
            acc += weight
            if pick * total < acc:
                return kind
        return kinds[-1][0]


def _match_family(entries: Mapping[str, Any], model_id: str) -> Any:
    """First key (other than ``default``) that is a substring of ``model_id``, else ``default``.

    Raises KeyError when nothing matches and there is no ``default`` entry.
    """
    lowered = model_id.lower()
    for key, entry in entries.items():
        if key != DEFAULT_MODEL_KEY and key.lower() in lowered:
            return entry
    if DEFAULT_MODEL_KEY in entries:
        return entries[DEFAULT_MODEL_KEY]
    raise KeyError(model_id)


def _share(value: Any, where: str) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{where}: must be in [0, 1], got {value!r}")
    return share


def _layer_mapping(value: Any, where: str, keys: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {value!r}")
    extra = set(value) - set(keys)
    if extra:
        raise ValueError(f"{where}: unknown keys {sorted(extra)}")
    return value


@dataclass(frozen=True)
class BedrockLayer:
    """Bedrock's own time per request, by model family, added before the response headers.

    ``server_share`` of it is counted in the latency Bedrock reports (``invocationLatency``,
    ``firstByteLatency``, Converse ``latencyMs``); the rest is time only the client sees.
    """

    overhead_ms: dict[str, Distribution] = field(default_factory=dict)
    server_share: float = 1.0

    @classmethod
    def parse(cls, value: Any, where: str = "bedrock") -> BedrockLayer:
        if value is None:
            return cls()
        data = _layer_mapping(value, where, ("overhead_ms", "server_share"))
        overhead = data.get("overhead_ms") or {}
        if isinstance(overhead, Mapping) and "median" not in overhead:
            families = {str(k): Distribution.parse(v, f"{where}.overhead_ms.{k}")
                        for k, v in overhead.items()}
        else:
            families = {DEFAULT_MODEL_KEY: Distribution.parse(overhead, f"{where}.overhead_ms")}
        return cls(families, _share(data.get("server_share", 1.0), f"{where}.server_share"))

    def overhead_for(self, model_id: str) -> Distribution:
        """The overhead for ``model_id``'s family; none (0 ms) when no entry matches."""
        try:
            found: Distribution = _match_family(self.overhead_ms, model_id)
        except KeyError:
            return Distribution(0.0)
        return found


@dataclass(frozen=True)
class GuardrailLayer:
    """A guardrail's assessment time, added before the headers of guarded requests."""

    overhead_ms: Distribution = field(default_factory=lambda: Distribution(0.0))
    server_share: float = 1.0
    intervene_rate: float = 0.0

    @classmethod
    def parse(cls, value: Any, where: str = "guardrail") -> GuardrailLayer:
        if value is None:
            return cls()
        data = _layer_mapping(value, where, ("overhead_ms", "server_share", "intervene_rate"))
        return cls(Distribution.parse(data.get("overhead_ms", 0.0), f"{where}.overhead_ms"),
                   _share(data.get("server_share", 1.0), f"{where}.server_share"),
                   _share(data.get("intervene_rate", 0.0), f"{where}.intervene_rate"))


@dataclass
class EmulatorProfile:
    """A named latency profile: per-model timings, a fault mix and the seed of all draws."""

    name: str
    seed: int
    models: dict[str, ModelProfile]
    faults: FaultProfile = field(default_factory=FaultProfile)
    bedrock: BedrockLayer = field(default_factory=BedrockLayer)
    guardrail: GuardrailLayer = field(default_factory=GuardrailLayer)
    capacity: CapacityProfile = field(default_factory=CapacityProfile)
    prompt_cache: CacheProfile = field(default_factory=CacheProfile)
    replies: tuple[ReplyRule, ...] = ()
    rate_limits: RateLimitProfile = field(default_factory=RateLimitProfile)

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("an emulator profile needs at least one entry under 'models'")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EmulatorProfile:
        """From a plain mapping (parsed YAML) or an OmegaConf DictConfig."""
        data = _to_plain(data)
        if not isinstance(data, Mapping):
            raise ValueError(f"an emulator profile must be a mapping, got {type(data).__name__}")
        models = data.get("models")
        if not isinstance(models, Mapping) or not models:
            raise ValueError("an emulator profile needs a non-empty 'models' mapping")
        return cls(
            name=str(data.get("name", "unnamed")),
            seed=int(data.get("seed", 0)),
            models={str(k): ModelProfile.parse(v, f"models.{k}") for k, v in models.items()},
            faults=FaultProfile.parse(data.get("faults")),
            bedrock=BedrockLayer.parse(data.get("bedrock")),
            guardrail=GuardrailLayer.parse(data.get("guardrail")),
            capacity=CapacityProfile.parse(data.get("capacity")),
            prompt_cache=CacheProfile.parse(data.get("prompt_cache")),
            replies=parse_replies(data.get("replies")),
            rate_limits=RateLimitProfile.parse(data.get("rate_limits")),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmulatorProfile:
        """From a YAML file."""
        text = Path(path).read_text(encoding="utf-8")
        return cls.from_yaml(text)

    @classmethod
    def from_yaml(cls, text: str) -> EmulatorProfile:
        return cls.from_mapping(yaml.safe_load(text))

    @classmethod
    def fixed(
        cls,
        ttfb_ms: float,
        ttft_ms: float,
        itl_ms: float,
        output_tokens: int,
        error_rate: float = 0.0,
        seed: int = 0,
        fault_kinds: Mapping[str, float] | None = None,
    ) -> EmulatorProfile:
        """Every model answers alike with fixed timings (sigma 0)."""
        model = ModelProfile(
            Distribution(ttfb_ms), Distribution(ttft_ms), Distribution(itl_ms), output_tokens
        )
        kinds = dict(fault_kinds) if fault_kinds is not None else {"overloaded": 1.0}
        return cls("fixed", seed, {DEFAULT_MODEL_KEY: model}, FaultProfile(error_rate, kinds))

    def with_overrides(
        self,
        *,
        ttfb_ms: float | None = None,
        ttft_ms: float | None = None,
        itl_ms: float | None = None,
        output_tokens: int | None = None,
        error_rate: float | None = None,
        seed: int | None = None,
    ) -> EmulatorProfile:
        """A copy where each given timing is fixed (sigma 0) for every model."""
        models: dict[str, ModelProfile] = {}
        for key, mp in self.models.items():
            models[key] = ModelProfile(
                Distribution(ttfb_ms) if ttfb_ms is not None else mp.ttfb_ms,
                Distribution(ttft_ms) if ttft_ms is not None else mp.ttft_ms,
                Distribution(itl_ms) if itl_ms is not None else mp.itl_ms,
                output_tokens if output_tokens is not None else mp.output_tokens,
            )
        faults = self.faults
        if error_rate is not None:
            faults = FaultProfile(error_rate, dict(faults.kinds) or {"overloaded": 1.0})
        return replace(self, models=models, faults=faults, seed=self.seed if seed is None else seed)

    def model_profile(self, model_id: str) -> ModelProfile:
        """First ``models`` key that is a substring of ``model_id``, else ``default``.

        Raises KeyError when nothing matches and there is no ``default`` entry.
        """
        lowered = model_id.lower()
        for key, mp in self.models.items():
            if key != DEFAULT_MODEL_KEY and key.lower() in lowered:
                return mp
        if DEFAULT_MODEL_KEY in self.models:
            return self.models[DEFAULT_MODEL_KEY]
        raise KeyError(model_id)


def _to_plain(data: Any) -> Any:
    """Convert an OmegaConf container to plain dicts/lists; anything else unchanged."""
    try:  # lazy: a heavy import (~85 ms) that only Hydra-built profiles need
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return data
    if OmegaConf.is_config(data):
        return OmegaConf.to_container(data, resolve=True)
    return data
