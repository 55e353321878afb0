"""Column names and numbers as a person reads them (the HTML report's tables): one rule for
every header, one for every number."""

from __future__ import annotations

import math
from collections.abc import Sequence

LABEL_CHARS = 38

WORDS = {"ttft": "TTFT", "ttfb": "TTFB", "tps": "tokens/s", "id": "id", "n": "n",
         "ci95": "95% CI", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99",
         "pct": "%", "ok": "ok", "itl": "ITL", "tpot": "TPOT"}
UNITS = {"ms": "ms", "s": "s", "tokens": "tokens"}


def header(column: str) -> str:
    """``output_tps_mean_grade`` -> "output tokens/s mean grade", ``ttft_p50_ms`` -> "TTFT
    p50 (ms)", ``run_id`` -> "run id": words split at ``_``, acronyms capitalized, a trailing
    unit in parentheses."""
    words = column.split("_")
    unit = words.pop() if len(words) > 1 and words[-1] in UNITS else None
    text = " ".join(WORDS.get(w, w) for w in words)
    return f"{text} ({UNITS[unit]})" if unit else text


def number(value: int | float) -> str:
    """Integers with thousands separators; floats to about 3 significant digits, never in
    scientific notation: 211.163 -> "211", 12.345 -> "12.3", 0.09575 -> "0.0958"."""
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "–"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    decimals = 2 - math.floor(math.log10(abs(value)))
    return f"{value:,.{decimals}f}"


def short_name(cell: str, every: Sequence[str]) -> str:
    """``cell`` without the /-separated parts that are the same in every cell of ``every``."""
    split = [c.split("/") for c in every]
    parts = cell.split("/")
    if len(set(every)) < 2 or any(len(s) != len(parts) for s in split):
        return cell
    kept = [p for i, p in enumerate(parts) if len({s[i] for s in split}) > 1]
    return "/".join(kept) or cell


def shared_parts(every: Sequence[str]) -> str:
    """The cell name pattern of ``every``: the parts they share, ``…`` where they differ."""
    split = [c.split("/") for c in every]
    if not split or any(len(s) != len(split[0]) for s in split):
        return ""
    columns = list(zip(*split, strict=True))
    return "/".join(c[0] if len(set(c)) == 1 else "…" for c in columns)


def clip(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
