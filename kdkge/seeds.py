"""Several seeds per cell: mean ± std, a bootstrap 95 % interval, and paired model comparisons.

The paper reports one seed per cell (and its Tables 4–6 swing by ±0.1 MRR between neighbouring
sizes).  Train a cell with several seeds — ``make sweep SWEEP=table2_seeds`` (seeds 1–5; on clean
data the five seeds of one configuration are stacked into one job) or ``python train.py -m
seed=1,2,3,4,5 ...`` — then ``python -m kdkge.seeds`` (``make seeds``) writes
``results/seeds.md`` for every cell with several seeds (``make tables`` writes Table 2's cells in
the paper's layout as ``results/table2_seeds.*``, :mod:`kdkge.seed_tables`):

* per (dataset, model, d, calibration, noise): n seeds, mean ± sample std of test MRR and
  Hits@1/3/10, and a percentile-bootstrap 95 % interval of the mean MRR;
* paired comparisons per dataset and size: KD-DistMult − DistMult and KD-Rel-DistMult − DistMult
  test MRR over the seeds both have (mean difference, bootstrap 95 % interval, the number of
  seeds where the KD model wins, and the two-sided exact sign-test p-value).

Only FINISHED runs count; of several runs of one configuration and seed, the newest is used.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

CELL = ["dataset", "model", "dim", "calibration", "alpha", "noise_ratio", "epochs", "strategy"]
METRICS = ["test_mrr", "test_hits_1", "test_hits_3", "test_hits_10"]
PAIRS = [("kd_distmult", "distmult"), ("kd_rel_distmult", "distmult")]


def bootstrap_ci(values: Sequence[float], level: float = 0.95, draws: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (deterministic: fixed seed)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties dropped): P(|W − n/2| ≥ |wins − n/2|) under Binomial(n, ½)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def runs_frame(tracking_uri: str | None, experiments: Sequence[str]) -> pd.DataFrame:
    """One row per FINISHED (configuration, seed), the newest; columns CELL + seed + METRICS.

    Built on :func:`kdkge.tables.load_runs` (the one loader of FINISHED runs, newest per config hash).
    """
    from .tables import load_runs

    runs = load_runs(tracking_uri, experiments).runs
    if runs.empty:
        return pd.DataFrame(columns=CELL + ["seed"] + METRICS)
    runs = runs[runs["seed"].notna()]
    out = pd.DataFrame({
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
    wins/losses of ``a`` and the exact two-sided sign-test p; ``None`` without common seeds."""
    common = sorted(set(a.index) & set(b.index))
    if not common:
        return None
    diff = (a.loc[common] - b.loc[common]).to_numpy()
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    low, high = bootstrap_ci(diff)
    return dict(n=len(common), mean_diff=float(diff.mean()), ci_low=low, ci_high=high, wins=wins, losses=losses,
                sign_p=sign_test_p(wins, losses))


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """KD model − DistMult test MRR per dataset and size, over the seeds both have."""
    rows = []
    keys = ["dataset", "dim", "calibration", "alpha", "noise_ratio", "epochs", "strategy"]
    for cell, group in df.groupby(keys, sort=True):
        for kd, base in PAIRS:
            a = group[group["model"] == kd].set_index("seed")["test_mrr"]
            b = group[group["model"] == base].set_index("seed")["test_mrr"]
            stats = compare_paired(a, b)
            if stats is not None:
                rows.append(dict(zip(keys, cell), comparison=f"{kd} − {base}", **stats))
    return pd.DataFrame(rows)


def fmt3(x: float | None) -> str:
    """A value with 3 decimals; "—" for a missing one (None or NaN)."""
    return "—" if x is None or x != x else f"{x:.3f}"


def markdown(summary: pd.DataFrame, pairs: pd.DataFrame) -> str:
    lines = ["# Several seeds per cell", "",
             "Generated by `python -m kdkge.seeds` from MLflow (FINISHED runs, newest per configuration and seed).",
             "Mean ± sample standard deviation over seeds; 95 % interval: percentile bootstrap of the mean (10,000 draws).", ""]
    if summary.empty:
        return "\n".join(lines + ["No runs found.", ""])
    lines += ["| dataset | model | d | calibration | noise | n | test MRR | 95 % CI | H@1 | H@3 | H@10 |",
              "|---|---|---:|---|---|---:|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        cal = r.calibration + (f" α={r.alpha}" if r.alpha else "")
        cells = [f"{fmt3(getattr(r, f'{m}_mean'))} ± {fmt3(getattr(r, f'{m}_std'))}" for m in METRICS]
        lines.append(f"| {r.dataset} | {r.model} | {r.dim} | {cal} | {r.noise_ratio} | {r.n} | {cells[0]} | "
                     f"[{fmt3(r.test_mrr_ci_low)}, {fmt3(r.test_mrr_ci_high)}] | {cells[1]} | {cells[2]} | {cells[3]} |")
    lines += ["", "## Paired comparisons (same seeds)", ""]
    if pairs.empty:
        lines.append("No configuration has both models on common seeds.")
    else:
        lines += ["| dataset | d | calibration | noise | comparison | n | mean Δ test MRR | 95 % CI | wins/losses | sign test p |",
                  "|---|---:|---|---|---|---:|---:|---|---|---:|"]
        for r in pairs.itertuples(index=False):
            lines.append(f"| {r.dataset} | {r.dim} | {r.calibration} | {r.noise_ratio} | {r.comparison} | {r.n} | "
                         f"{r.mean_diff:+.3f} | [{fmt3(r.ci_low)}, {fmt3(r.ci_high)}] | {r.wins}/{r.losses} | {r.sign_p:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mean ± std over seeds and paired comparisons, from MLflow.")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///<repo>/mlflow.db")
    parser.add_argument("--experiments", nargs="+", default=["kdkge-umls", "kdkge-kinship"])
    parser.add_argument("--out", default="results/seeds.md")
    args = parser.parse_args(argv)
    df = runs_frame(args.tracking_uri, args.experiments)
    multi = df.groupby(CELL)["seed"].transform("nunique") > 1 if not df.empty else []
    df = df[multi] if len(df) else df
    text = markdown(summarise(df) if len(df) else pd.DataFrame(), paired(df) if len(df) else pd.DataFrame())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"{len(df)} runs in cells with several seeds -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
