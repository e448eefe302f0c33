"""Several seeds per cell: mean ± std, a bootstrap 95 % interval, and paired model comparisons.

The paper reports one seed per cell (and its Tables 4–6 swing by ±0.1 MRR between neighbouring
sizes).  Train a cell with several seeds — ``make sweep SWEEP=table2_seeds`` (seeds 1–5; on clean
data the five seeds of one configuration are stacked into one job) or ``python train.py -m
seed=1,2,3,4,5 ...`` — then ``python -m kdkge.seeds`` (``make seeds``) writes
``results/seeds.md`` for every cell with several seeds (``make tables`` writes Table 2's cells in
the paper's layout as ``results/table2_seeds.*``, :mod:`kdkge.seed_tables`):

* per (protocol, loss, dataset, model, d, calibration, noise): n seeds, mean ± sample std of test
  MRR and Hits@1/3/10, and a percentile-bootstrap 95 % interval of the mean MRR;
* paired comparisons per protocol, loss, dataset and size: KD-DistMult − DistMult and
  KD-Rel-DistMult − DistMult test MRR over the seeds both have (mean difference, bootstrap 95 %
  interval, the number of seeds where the KD model wins, the two-sided exact sign-test p-value,
  and the paired t-test p-value).

The statistics are scipy's: ``scipy.stats.bootstrap`` (percentile method, 10,000 resamples, fixed
seed), ``scipy.stats.binomtest`` (the sign test: wins among non-tied pairs ~ Binomial(n, ½)) and
``scipy.stats.ttest_rel``.  With n pairs the two-sided sign test can never go below 2·0.5ⁿ
(0.0625 for 5 seeds): five wins out of five is "p = 0.0625", not significance at 5 %.

Only FINISHED runs count; of several runs of one configuration and seed, the newest is used.
Numbers in the format of :mod:`kdkge.reports.common` (metrics ``.500``, p-values ``0.0625``).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .reports.common import fmt_metric, fmt_p, fmt_pm, fmt_signed
from .runrecord import RECORD_DIR

CELL = ["protocol", "loss", "dataset", "model", "dim", "calibration", "alpha", "noise_ratio", "epochs", "strategy"]
METRICS = ["test_mrr", "test_hits_1", "test_hits_3", "test_hits_10"]
PAIRS = [("kd_distmult", "distmult"), ("kd_rel_distmult", "distmult")]


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


def runs_frame(tracking_uri: str | None, experiments: Sequence[str], record: str | Path | None = None) -> pd.DataFrame:
    """One row per FINISHED (configuration, seed), the newest; columns CELL + seed + METRICS.

    Built on :func:`kdkge.reports.runs.load_runs` (the one loader of FINISHED runs, newest per
    config hash; from the store, or from the run record in the folder ``record``).
    """
    from .reports.runs import load_runs

    runs = load_runs(tracking_uri, experiments, record).runs
    if runs.empty:
        return pd.DataFrame(columns=CELL + ["seed"] + METRICS)
    runs = runs[runs["seed"].notna()]
    out = pd.DataFrame({
        "protocol": runs["protocol"], "loss": runs["loss"],
        "dataset": runs["dataset"], "model": runs["model"], "dim": runs["dim"].astype(int),
        "calibration": runs["calibration"],
        "alpha": runs["alpha"].map(lambda a: "" if a != a else f"{a:g}"),
        "noise_ratio": runs["noise"].map(lambda v: f"{v:g}" if v else "0.0"),
        "epochs": runs["epochs"].map(lambda v: "" if v != v else f"{v:g}"),
        "strategy": runs["strategy"].fillna(""),
        "seed": runs["seed"].astype(int),
    })
    for metric in METRICS:
        out[metric] = runs[metric].astype(float)
    return out.drop_duplicates(CELL + ["seed"], keep="first").reset_index(drop=True)  # runs: newest first


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and bootstrap interval per cell."""
    rows = []
    for cell, group in df.groupby(CELL, sort=True):
        row = dict(zip(CELL, cell), n=len(group), seeds=",".join(map(str, sorted(group["seed"]))))
        for metric in METRICS:
            row[f"{metric}_mean"] = group[metric].mean()
            row[f"{metric}_std"] = group[metric].std(ddof=1) if len(group) > 1 else float("nan")
        row["test_mrr_ci_low"], row["test_mrr_ci_high"] = bootstrap_ci(group["test_mrr"])
        rows.append(row)
    return pd.DataFrame(rows)


def compare_paired(a: pd.Series, b: pd.Series) -> dict | None:
    """``a − b`` over the seeds (index) both have: n, mean difference, bootstrap 95 % interval,
    wins/losses of ``a``, the exact two-sided sign-test p, its floor 2·0.5ⁿ and the paired t-test p;
    ``None`` without common seeds."""
    common = sorted(set(a.index) & set(b.index))
    if not common:
        return None
    av, bv = a.loc[common].to_numpy(dtype=float), b.loc[common].to_numpy(dtype=float)
    diff = av - bv
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    low, high = bootstrap_ci(diff)
    return dict(n=len(common), mean_diff=float(diff.mean()), ci_low=low, ci_high=high, wins=wins, losses=losses,
                sign_p=sign_test_p(wins, losses), sign_floor=sign_test_floor(wins + losses), t_p=paired_t_p(av, bv))


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """KD model − DistMult test MRR per dataset and size, over the seeds both have."""
    rows = []
    keys = ["protocol", "loss", "dataset", "dim", "calibration", "alpha", "noise_ratio", "epochs", "strategy"]
    for cell, group in df.groupby(keys, sort=True):
        for kd, base in PAIRS:
            a = group[group["model"] == kd].set_index("seed")["test_mrr"]
            b = group[group["model"] == base].set_index("seed")["test_mrr"]
            stats = compare_paired(a, b)
            if stats is not None:
                rows.append(dict(zip(keys, cell), comparison=f"{kd} − {base}", **stats))
    return pd.DataFrame(rows)


def fmt3(x: float | None) -> str:
    """A metric with 3 decimals in the results files' one format (``.500``); "—" when missing."""
    return fmt_metric(x)


SIGN_FLOOR_NOTE = ("Sign test: two-sided, exact (`scipy.stats.binomtest`, ties dropped); with n pairs it cannot go "
                   "below 2·0.5ⁿ (n = 5: 0.0625), so it never reaches 5 % with fewer than 6 seeds. Paired t-test: "
                   "`scipy.stats.ttest_rel` (— when the differences do not vary).")


def markdown(summary: pd.DataFrame, pairs: pd.DataFrame) -> str:
    lines = ["# Several seeds per cell", "",
             "Generated by `python -m kdkge.seeds` from MLflow (FINISHED runs, newest per configuration and seed).",
             "Mean ± sample standard deviation over seeds; 95 % interval: percentile bootstrap of the mean "
             "(`scipy.stats.bootstrap`, 10,000 resamples).", ""]
    if summary.empty:
        return "\n".join(lines + ["No runs found.", ""])
    lines += ["| protocol | loss | dataset | model | d | calibration | noise | n | test MRR | 95 % CI | H@1 | H@3 | H@10 |",
              "|---|---|---|---|---:|---|---|---:|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        cal = r.calibration + (f" α={r.alpha}" if r.alpha else "")
        cells = [fmt_pm(getattr(r, f"{m}_mean"), getattr(r, f"{m}_std")) for m in METRICS]
        lines.append(f"| {r.protocol} | {r.loss} | {r.dataset} | {r.model} | {r.dim} | {cal} | {r.noise_ratio} | {r.n} | "
                     f"{cells[0]} | [{fmt3(r.test_mrr_ci_low)}, {fmt3(r.test_mrr_ci_high)}] | {cells[1]} | {cells[2]} | {cells[3]} |")
    lines += ["", "## Paired comparisons (same seeds)", ""]
    if pairs.empty:
        lines.append("No configuration has both models on common seeds.")
    else:
        lines += [SIGN_FLOOR_NOTE, "",
                  "| protocol | loss | dataset | d | calibration | noise | comparison | n | mean Δ test MRR | 95 % CI | "
                  "wins/losses | sign test p (floor) | paired t p |",
                  "|---|---|---|---:|---|---|---|---:|---:|---|---|---:|---:|"]
        for r in pairs.itertuples(index=False):
            lines.append(f"| {r.protocol} | {r.loss} | {r.dataset} | {r.dim} | {r.calibration} | {r.noise_ratio} | "
                         f"{r.comparison} | {r.n} | {fmt_signed(r.mean_diff)} | [{fmt3(r.ci_low)}, {fmt3(r.ci_high)}] | "
                         f"{r.wins}/{r.losses} | {fmt_p(r.sign_p)} ({fmt_p(r.sign_floor)}) | {fmt_p(r.t_p)} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mean ± std over seeds and paired comparisons, from MLflow.")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///<repo>/mlflow.db")
    parser.add_argument("--experiments", nargs="+", default=["kdkge-umls", "kdkge-kinship"])
    parser.add_argument("--out", default="results/seeds.md")
    parser.add_argument("--from-record", nargs="?", const=str(RECORD_DIR), default=None, metavar="FOLDER",
                        help="read the runs from the run record (default folder: %(const)s) instead of the store")
    args = parser.parse_args(argv)
    df = runs_frame(args.tracking_uri, args.experiments, args.from_record)
    multi = df.groupby(CELL)["seed"].transform("nunique") > 1 if not df.empty else []
    df = df[multi] if len(df) else df
    text = markdown(summarise(df) if len(df) else pd.DataFrame(), paired(df) if len(df) else pd.DataFrame())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"{len(df)} runs in cells with several seeds -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
