"""Statistics over seeds, all scipy's: means and intervals, and paired tests of two models.

* :func:`summary`: n, mean, sample standard deviation and the 95 % Student-t interval of the mean
  (``scipy.stats.t``: mean ± t₀.₉₇₅,ₙ₋₁ · s/√n);
* :func:`bootstrap_ci`: the percentile-bootstrap interval of the mean (``scipy.stats.bootstrap``,
  10,000 resamples, fixed seed);
* :func:`compare_paired`: ``a − b`` over the seeds both have — mean difference, bootstrap interval,
  wins/losses, the exact two-sided sign test (``scipy.stats.binomtest``) and its floor 2·0.5ⁿ,
  the paired t-test (``scipy.stats.ttest_rel``) and the Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``, exact for small n).

Small n: with n pairs the two-sided sign test cannot go below 2·0.5ⁿ and the exact Wilcoxon test
below 2·0.5ⁿ as well (0.0625 for n = 5), so neither can reach 5 % with fewer than 6 seeds; only the
t-test can, and it assumes normally distributed differences.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np


def summary(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """``n``, ``mean``, ``std`` (sample, ddof 1) and the Student-t interval ``ci_low``/``ci_high`` of the mean.

    NaN values are dropped; std and the interval are NaN with fewer than two values; the interval
    is the mean itself when the values do not vary."""
    from scipy.stats import t

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    out = {"n": n, "mean": float(x.mean()) if n else math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    if n < 2:
        return out
    out["std"] = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * out["std"] / math.sqrt(n)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out


def bootstrap_ci(values: Sequence[float], level: float = 0.95, draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (``scipy.stats.bootstrap``; deterministic: fixed seed)."""
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    if np.all(values == values[0]):
        return (float(values[0]), float(values[0]))
    res = bootstrap((values,), np.mean, n_resamples=draws, confidence_level=level, method="percentile",
                    rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped): ``scipy.stats.binomtest(wins, wins + losses, ½)``."""
    from scipy.stats import binomtest

    n = wins + losses
    return 1.0 if n == 0 else float(binomtest(wins, n, 0.5).pvalue)


def sign_test_floor(n: int) -> float:
    """The smallest two-sided sign-test p with ``n`` pairs: 2·0.5ⁿ (capped at 1); 0.0625 for n = 5."""
    return min(1.0, 2 * 0.5**n) if n > 0 else 1.0


def paired_t_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p of ``a`` vs ``b`` (``scipy.stats.ttest_rel``); NaN with < 2 pairs
    or when the differences do not vary (the statistic is undefined or infinite)."""
    from scipy.stats import ttest_rel

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    diff = a - b
    if len(diff) < 2 or np.all(diff == diff[0]):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_rel(a, b).pvalue)


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p of ``a − b`` (``scipy.stats.wilcoxon``, zero differences
    dropped, exact distribution for small n); NaN without a non-zero difference."""
    from scipy.stats import wilcoxon

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not np.any(diff != 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)


def compare_paired(a, b, wilcoxon: bool = False) -> dict | None:
    """``a − b`` over the seeds (index of two ``pandas.Series``) both have: n, mean difference,
    bootstrap 95 % interval, wins/losses of ``a``, the exact two-sided sign-test p, its floor 2·0.5ⁿ,
    the paired t-test p (and, with ``wilcoxon``, the Wilcoxon signed-rank p); ``None`` without
    common seeds."""
    common = sorted(set(a.index) & set(b.index))
    if not common:
        return None
    av, bv = a.loc[common].to_numpy(dtype=float), b.loc[common].to_numpy(dtype=float)
    diff = av - bv
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    low, high = bootstrap_ci(diff)
    out = dict(n=len(common), mean_diff=float(diff.mean()), ci_low=low, ci_high=high, wins=wins, losses=losses,
               sign_p=sign_test_p(wins, losses), sign_floor=sign_test_floor(wins + losses), t_p=paired_t_p(av, bv))
    if wilcoxon:
        out["wilcoxon_p"] = wilcoxon_p(av, bv)
    return out


SIGN_FLOOR_NOTE = ("Sign test: two-sided, exact (`scipy.stats.binomtest`, ties dropped); with n pairs it cannot go "
                   "below 2·0.5ⁿ (n = 5: 0.0625), so it never reaches 5 % with fewer than 6 seeds. Paired t-test: "
                   "`scipy.stats.ttest_rel` (— when the differences do not vary).")
