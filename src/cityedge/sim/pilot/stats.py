"""Small statistics the judge needs, pure: percentiles, Wilson and exact Poisson intervals.

Wilson's interval for a proportion (recall, the share of false reports) behaves at 0 and n;
the Poisson interval (Garwood, exact) bounds a rate of events seen k times in an exposure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["Z95", "percentile", "poisson_interval", "wilson_interval"]

Z95 = 1.959964  # two-sided 95 %


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of successes/trials; (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _poisson_cdf(k: int, mean: float) -> float:
    term = math.exp(-mean)
    total = term
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return total


def _solve(f: object, target: float, lo: float, hi: float) -> float:
    """Bisection for a decreasing f(x) = target on [lo, hi]."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if f(mid) > target:  # type: ignore[operator]
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def poisson_interval(k: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Garwood) interval for the mean count when k events were seen."""
    upper_cap = max(10.0, 10.0 * (k + 1))
    upper = _solve(lambda m: _poisson_cdf(k, m), alpha / 2, 0.0, upper_cap)
    if k == 0:
        return (0.0, upper)
    lower = _solve(lambda m: _poisson_cdf(k - 1, m), 1 - alpha / 2, 0.0, upper_cap)
    return (lower, upper)
