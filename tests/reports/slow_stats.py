"""Slow, independent formulas for the statistics the reports take from scipy (no scipy here).

Student-t by Simpson integration of its density, the exact Wilcoxon signed-rank and sign tests by
enumerating every assignment of signs.
"""

from __future__ import annotations

import itertools
import math


def mean(xs):
    return sum(xs) / len(xs)


def std(xs):
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def t_cdf(q: float, nu: int, steps: int = 20_000) -> float:
    """P(T ≤ q) for Student's t with ``nu`` degrees of freedom, by Simpson's rule on [0, |q|]."""
    c = math.gamma((nu + 1) / 2) / (math.sqrt(nu * math.pi) * math.gamma(nu / 2))
    pdf = lambda x: c * (1 + x * x / nu) ** (-(nu + 1) / 2)  # noqa: E731
    a, b = 0.0, abs(q)
    h = (b - a) / steps
    s = pdf(a) + pdf(b) + sum((4 if i % 2 else 2) * pdf(a + i * h) for i in range(1, steps))
    half = s * h / 3
    return 0.5 + half if q >= 0 else 0.5 - half


def t_quantile(p: float, nu: int) -> float:
    lo, hi = 0.0, 50.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if t_cdf(mid, nu) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_interval(xs, level: float = 0.95):
    half = t_quantile(0.5 + level / 2, len(xs) - 1) * std(xs) / math.sqrt(len(xs))
    return mean(xs) - half, mean(xs) + half


def paired_t_p(a, b) -> float:
    d = [x - y for x, y in zip(a, b)]
    t = mean(d) / (std(d) / math.sqrt(len(d)))
    return 2 * (1 - t_cdf(abs(t), len(d) - 1))


def wilcoxon_exact_p(a, b) -> float:
    """Two-sided exact signed-rank p (no zero and no tied |differences|): 2·P(W ≤ min(W+, W−))."""
    d = [x - y for x, y in zip(a, b)]
    order = sorted(range(len(d)), key=lambda i: abs(d[i]))
    rank = {i: r + 1 for r, i in enumerate(order)}
    w_plus = sum(rank[i] for i in range(len(d)) if d[i] > 0)
    w = min(w_plus, len(d) * (len(d) + 1) // 2 - w_plus)
    hits = sum(1 for signs in itertools.product((0, 1), repeat=len(d))
               if sum(r + 1 for r, s in enumerate(signs) if s) <= w)
    return min(1.0, 2 * hits / 2 ** len(d))


def sign_p(wins: int, losses: int) -> float:
    n, k = wins + losses, min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)
