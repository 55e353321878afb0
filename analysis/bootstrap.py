"""Bootstrap confidence interval of the difference of two medians, exact and cheap.

A bootstrap resample of ``n`` values from a sample is ``F_n⁻¹(U₁) … F_n⁻¹(U_n)`` with
``U`` uniform on (0, 1] and ``F_n⁻¹(u) = x₍⌈n·u⌉₎`` (the sorted sample, 1-based). Since
``F_n⁻¹`` is monotone, the resample's median is ``F_n⁻¹`` of the median of the ``U``'s, and
the order statistics of ``n`` uniforms have known laws: ``U₍m₎ ~ Beta(m, n − m + 1)`` and,
given it, ``U₍m+1₎ = U₍m₎ + (1 − U₍m₎)·Beta(1, n − m)``. So one replicate needs one or two
beta draws and one or two sorted positions, not ``n`` random picks: the same distribution
as resampling, at a cost independent of ``n``. The functions here are the reference
(checked against brute-force resampling in tests/test_compare.py); ``latlab compare`` draws
by the same law in SQL (``analysis/55_bootstrap.sql``: hashed uniforms, seeded), where the
drawn positions pick values from a narrow band around each median.

Draws: n ≤ SMALL_N, the n uniforms themselves (exact); above, ``Beta(m, n − m + 1)`` from
its normal approximation (for a median the law is symmetric around 1/2 and its excess
kurtosis is −6/(n + 3)): the drawn position's distribution is within 0.003 of the exact one
(largest CDF difference) at n = 49 and closer above (tests/test_compare.py). Python's
``betavariate`` would be exact but costs two gamma draws: ~10x slower.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

REPLICATES = 2000
LEVEL = 0.95
SMALL_N = 48  # up to this size, draw the n uniforms themselves; above, a normal law

# positions (0-based, in the sorted sample) -> the values there
Fetch = Callable[[Sequence[int]], dict[int, float]]


def median_positions(n: int, rng: random.Random, replicates: int) -> list[tuple[int, int]]:
    """Per replicate, the two sorted positions whose mean is the resample's median
    (equal positions when ``n`` is odd)."""
    m = (n + 1) // 2
    out: list[tuple[int, int]] = []
    for _ in range(replicates):
        u1, u2 = _middle_uniforms(n, m, rng)
        out.append((_position(u1, n), _position(u2, n)))
    return out


def _middle_uniforms(n: int, m: int, rng: random.Random) -> tuple[float, float]:
    """The m-th and, for even n, (m+1)-th smallest of n uniforms (odd n: the m-th twice)."""
    if n <= SMALL_N:
        u = sorted([rng.random() for _ in range(n)])
        return u[m - 1], u[m - 1 if n % 2 else m]
    a, b = m, n - m + 1
    u1 = rng.gauss(a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))
    u1 = min(max(u1, 0.0), 1.0)
    if n % 2:
        return u1, u1
    # Beta(1, b) by inversion: 1 − V^(1/b)
    return u1, u1 + (1.0 - u1) * (1.0 - (1.0 - rng.random()) ** (1.0 / (n - m)))


def _position(u: float, n: int) -> int:
    return min(max(math.ceil(n * u) - 1, 0), n - 1)


def bootstrap_medians(n: int, fetch: Fetch, rng: random.Random,
                      replicates: int = REPLICATES) -> list[float]:
    """``replicates`` bootstrap medians of a sample of size ``n`` read through ``fetch``."""
    pairs = median_positions(n, rng, replicates)
    values = fetch(sorted({k for pair in pairs for k in pair}))
    return [(values[a] + values[b]) / 2 for a, b in pairs]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (as DuckDB's quantile_cont)."""
    h = (len(sorted_values) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def median_difference_ci(baseline: list[float], other: list[float],
                         level: float = LEVEL) -> Interval:
    """Percentile interval of (other − baseline) over paired replicates."""
    diffs = sorted(o - b for b, o in zip(baseline, other, strict=True))
    tail = (1 - level) / 2
    return Interval(percentile(diffs, tail), percentile(diffs, 1 - tail))


def needed_per_cell(n_baseline: int, n: int, ci: Interval, target: float) -> int | None:
    """Requests per cell (both cells alike) for the interval's half width to shrink to
    ``target``: the half width scales with sqrt(1/n₁ + 1/n₂). None if already narrow enough."""
    if target <= 0 or ci.half_width <= target:
        return None
    n_equal = 2 / (1 / n_baseline + 1 / n)
    return math.ceil(n_equal * (ci.half_width / target) ** 2)
