"""Length distributions: synthetic input and output lengths drawn per iteration, seeded.

``prompt.input_tokens`` and ``workload.output_tokens`` take ``{mean, stddev, min, max}``: a
normal distribution of token counts, rounded and clipped to [min, max] (min defaults to 1,
max to unbounded, stddev to 0). Iteration *i* of a cell draws the *i*-th value of a generator
seeded with ``workload.seed`` and the length's name, so a run's lengths repeat exactly with
the same seed, and the input and output draws are independent of each other.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from latlab.runner.core.errors import ConfigError


@dataclass(frozen=True)
class LengthDistribution:
    mean: float
    stddev: float = 0.0
    min: int = 1
    max: int | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> LengthDistribution | None:
        """From ``{mean, stddev, min, max}``; None for null; ConfigError naming ``where``."""
        if value is None:
            return None
        if not isinstance(value, Mapping) or "mean" not in value:
            raise ConfigError(f"{where}: expected {{mean, stddev, min, max}}, got {value!r}")
        extra = sorted(set(value) - {"mean", "stddev", "min", "max"})
        if extra:
            raise ConfigError(f"{where}.{extra[0]}: unknown key (keys: mean, stddev, min, max)")
        top = value.get("max")
        dist = cls(float(value["mean"]), float(value.get("stddev") or 0.0),
                   int(value.get("min") or 1), None if top is None else int(top))
        if dist.min < 1 or (dist.max is not None and dist.max < dist.min) or dist.stddev < 0:
            raise ConfigError(f"{where}: needs 1 <= min <= max and stddev >= 0")
        return dist

    def draw(self, rng: random.Random) -> int:
        value = round(rng.gauss(self.mean, self.stddev))
        return max(self.min, value if self.max is None else min(self.max, value))


def drawn_lengths(dist: LengthDistribution, count: int, seed: int, name: str) -> list[int]:
    """``count`` draws from the generator seeded with (``seed``, ``name``)."""
    rng = random.Random(f"{seed}:{name}")
    return [dist.draw(rng) for _ in range(count)]


def cell_distributions(cfg: Mapping[str, Any]
                       ) -> tuple[LengthDistribution | None, LengthDistribution | None]:
    """The cell's input and output length distributions (either may be None)."""
    return (LengthDistribution.parse(cfg["prompt"].get("input_tokens"), "prompt.input_tokens"),
            LengthDistribution.parse(cfg["workload"].get("output_tokens"),
                                     "workload.output_tokens"))
