"""Small exact tail probabilities in pure Python (no numpy): binomial upper tail, Poisson lower tail."""

from __future__ import annotations

import math

__all__ = ["binom_sf", "poisson_cdf", "strength"]


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    if k <= n * p:
        return 1.0 if k <= 1 else max(0.0, 1.0 - _binom_cdf(k - 1, n, p))
    total = 0.0
    first = _log_binom_pmf(k, n, p)
    term = first
    # terms decrease geometrically above the mean
    for i in range(k, n + 1):
        if i > k:
            term += math.log((n - i + 1) / i) + math.log(p) - math.log1p(-p)
        v = math.exp(term - first)
        total += v
        if v < 1e-12 * total:
            break
    return min(1.0, math.exp(first) * total)


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.exp(_log_binom_pmf(i, n, p)) for i in range(0, k + 1))


def poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu)."""
    if mu <= 0:
        return 1.0
    if k < 0:
        return 0.0
    term = math.exp(-mu)
    total = term
    for i in range(1, k + 1):
        term *= mu / i
        total += term
    return min(1.0, total)


def strength(p: float) -> float:
    """-log10 p, capped to 300."""
    if p <= 0:
        return 300.0
    return min(300.0, -math.log10(p))
