"""What a request cost: its token counts times the pricing table (``conf/pricing/``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latlab.runner.core.records import Measurement

PER_MILLION = 1_000_000


def prices_for(pricing: Mapping[str, Any], provider: str, model: str) -> Mapping[str, float]:
    """The provider's own prices for the model if listed, else the model's list prices."""
    per_provider = (pricing.get("providers") or {}).get(provider) or {}
    return per_provider.get(model) or (pricing.get("models") or {}).get(model) or {}


def cost_usd(m: Measurement, prices: Mapping[str, float]) -> float | None:
    """USD for one request; None when there are no prices or no token counts."""
    if not prices or (m.input_tokens is None and m.output_tokens is None):
        return None
    counts = {"input": m.input_tokens, "output": m.output_tokens,
              "cache_write": m.cache_write_tokens, "cache_read": m.cache_read_tokens}
    total = sum((counts[k] or 0) * float(prices.get(k, 0.0)) for k in counts)
    return total / PER_MILLION
