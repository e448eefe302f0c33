"""Pareto fronts of test MRR against |Θ| (issue 18): ``results/pareto_<dataset>_<protocol>.png`` and
``results/pareto.md``.

Data: every FINISHED run of the paper's three models at the paper's settings apart from the seed
(1000 epochs, lr 0.01, batch 1024, 1vsAll), clean data, no calibration — Tables 2, 5 and 6, the
seed and equal-budget sweeps, and the Pareto sweep (``sweeps/pareto.yaml``: the 100 square sizes
1² … 100², seeds 1–5). Per model and size one point: the mean test MRR over its seeds (one run per
seed, the newest), the sample std as error bar, |Θ| the logged ``num_parameters``.

A point is on the front when no other point (of any of the three models) has at most its |Θ| and
at least its mean MRR, one of them strictly. Read as a step function, the front says which model
to take for a budget B: the front point with the largest |Θ| ≤ B.

Per protocol and split: ``paper_code`` (test MRR on the authors' 2022 split, ``paper_test_mrr``),
``paper_code_clean`` (the same runs on the clean split) and ``paper_text`` (clean split).
"""

from __future__ import annotations

import math

import pandas as pd

from ..schema import metric_key
from .common import EM_DASH, PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT, Variant, fmt_params, fmt_pm
from .paper import DATASET_LABELS, DATASETS, MODEL_LABELS, MODELS
from .plots import png_bytes
from .runs import RunPool, at_paper_settings

#: the file-name key of each variant: ``pareto_<dataset>_<key>.png``
KEYS = {PAPER_CODE: "paper_code", PAPER_CODE_CLEAN: "paper_code_clean", PAPER_TEXT: "paper_text"}
COLORS = {"distmult": "tab:blue", "kd_rel_distmult": "tab:orange", "kd_distmult": "tab:green"}
MARKERS = {"distmult": "o", "kd_rel_distmult": "s", "kd_distmult": "^"}


def points(pool: RunPool, dataset: str, variant: Variant) -> pd.DataFrame:
    """One row per (model, d): n seeds, mean |Θ|, mean and sample std of the test MRR of ``variant``'s split.

    ``pool``: the runs of ``variant`` (:meth:`RunPool.of`). Sorted by |Θ|, then model."""
    cols = ["dataset", "model", "dim", "n", "seeds", "params", "mrr_mean", "mrr_std"]
    runs = at_paper_settings(pool.runs)
    col = metric_key(variant.test_split, "mrr")
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs[(runs.dataset == dataset) & runs.model.isin(MODELS) & runs[col].notna() & runs["params"].notna()]
    runs = runs.sort_values("start_time", ascending=False, kind="stable").drop_duplicates(["model", "dim", "seed"])
    rows = []
    for (model, dim), g in runs.groupby(["model", "dim"], sort=True):
        rows.append({"dataset": dataset, "model": model, "dim": int(dim), "n": len(g),
                     "seeds": ",".join(str(int(s)) for s in sorted(g.seed)), "params": float(g["params"].mean()),
                     "mrr_mean": float(g[col].mean()), "mrr_std": float(g[col].std(ddof=1)) if len(g) > 1 else math.nan})
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["params", "model"], kind="stable").reset_index(drop=True)


def front(pts: pd.DataFrame) -> pd.DataFrame:
    """The points no other point dominates (at most its |Θ|, at least its mean MRR, one strictly), by |Θ|."""
    if pts.empty:
        return pts
    order = pts.sort_values(["params", "mrr_mean"], ascending=[True, False], kind="stable")
    keep, best = [], -math.inf
    for idx, row in order.iterrows():
        if row["mrr_mean"] > best:
            keep.append(idx)
            best = row["mrr_mean"]
    return order.loc[keep].reset_index(drop=True)


def plot(pts: pd.DataFrame, dataset: str, variant: Variant) -> bytes | None:
    """PNG bytes: mean test MRR ± std over seeds against |Θ| (log x), per model; the front as a step line.
    ``None`` without points. No timestamp in the file (same runs, same bytes)."""
    if pts.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for model in MODELS:
        m = pts[pts.model == model]
        if m.empty:
            continue
        ax.errorbar(m["params"], m["mrr_mean"], yerr=m["mrr_std"].fillna(0.0), fmt=MARKERS[model] + "-",
                    color=COLORS[model], ms=3.5, lw=0.8, elinewidth=0.8, capsize=2, label=MODEL_LABELS[model])
    f = front(pts)
    # the front as a step function, held to the largest |Θ| measured
    xs, ys = [*f["params"], float(pts["params"].max())], [*f["mrr_mean"], float(f["mrr_mean"].iloc[-1])]
    ax.step(xs, ys, where="post", color="black", lw=1.2, alpha=0.7, label="Pareto front")
    ax.plot(f["params"], f["mrr_mean"], "o", mfc="none", mec="black", ms=7, lw=0)
    ax.set_xscale("log")
    ax.set_xlabel("|Θ| (number of parameters, log scale)")
    split = "the authors' 2022 test split" if variant.test_split == "paper_test" else "clean test split"
    ax.set_ylabel(f"test MRR ({split})")
    lo, hi = int(pts["n"].min()), int(pts["n"].max())
    seeds = f"{lo}" if lo == hi else f"{lo}–{hi}"
    ax.set_title(f"{DATASET_LABELS.get(dataset, dataset)}, {variant.label}: test MRR vs. |Θ|\n"
                 f"(mean ± std over the seeds; {seeds} seed{'' if hi == 1 else 's'} per point)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return png_bytes(fig)


def _front_lines(pts: pd.DataFrame) -> list[str]:
    f = front(pts)
    lines = ["| budget \\|Θ\\| from | up to | model on the front | d | \\|Θ\\| | seeds | test MRR |",
             "|---:|---:|---|---:|---:|---:|---|"]
    for i, r in f.iterrows():
        upto = fmt_params(f["params"].iloc[i + 1] - 1) if i + 1 < len(f) else "∞"
        lines.append(f"| {fmt_params(r['params'])} | {upto} | {MODEL_LABELS[r['model']]} | {r['dim']} | "
                     f"{fmt_params(r['params'])} | {r['n']} | {fmt_pm(r['mrr_mean'], r['mrr_std'])} |")
    share = [f"{MODEL_LABELS[m]} {int((f.model == m).sum())} of {int((pts.model == m).sum())}" for m in MODELS]
    lines += ["", "On the front (points on the front of the points measured): " + ", ".join(share) + "."]
    return lines


def _sizes(label: str, n: int) -> str:
    return f"{label} {n} size{'' if n == 1 else 's'}"


def render_markdown(all_points: dict[tuple[Variant, str], pd.DataFrame]) -> str:
    lines = ["# Pareto fronts: test MRR against |Θ|", "",
             "Generated by `make tables` (`kdkge/reports/pareto.py`) from the recorded runs; do not edit by hand. "
             "Every FINISHED run of DistMult, KD-Rel-DistMult and KD-DistMult at the paper's settings apart from the "
             "seed (1000 epochs, lr 0.01, batch 1024, 1vsAll, clean data, no calibration): Tables 2, 5 and 6, the seed, "
             "equal-budget and Pareto sweeps (`make sweep SWEEP=pareto_tables`: the 19 table sizes over seeds 1–5; "
             "`make sweep SWEEP=pareto`: the 100-size grid). One point per model and size: mean test MRR "
             "± sample std over its seeds, |Θ| the logged `num_parameters`. A point is on the front when no point of "
             "any model has at most its |Θ| and at least its MRR; for a budget B take the front point with the "
             "largest |Θ| ≤ B (the rows below). Plots: `pareto_<dataset>_<protocol>.png`."]
    for (variant, dataset), pts in all_points.items():
        lines += ["", f"## {DATASET_LABELS.get(dataset, dataset)}, {variant.label}", "",
                  f"{variant.description}; plot: [`pareto_{dataset}_{KEYS[variant]}.png`](pareto_{dataset}_{KEYS[variant]}.png).",
                  ""]
        if pts.empty:
            lines.append(f"No runs ({EM_DASH}).")
            continue
        counts = ", ".join(_sizes(MODEL_LABELS[m], int((pts.model == m).sum())) for m in MODELS)
        lines += [f"{len(pts)} points ({counts}); seeds per point: {int(pts['n'].min())}–{int(pts['n'].max())}.", ""]
        lines += _front_lines(pts)
    return "\n".join(lines) + "\n"


def render(pools: dict[Variant, RunPool]) -> dict[str, bytes | None]:
    """File name → contents: ``pareto.md`` and ``pareto_<dataset>_<key>.png`` per dataset and variant
    (``pools``: variant → its runs); ``None`` for a plot without points, and for all while there are none."""
    all_points = {(v, ds): points(pool, ds, v) for v, pool in pools.items() for ds in DATASETS}
    files: dict[str, bytes | None] = {f"pareto_{ds}_{KEYS[v]}.png": plot(pts, ds, v) for (v, ds), pts in all_points.items()}
    has_any = any(not pts.empty for pts in all_points.values())
    files["pareto.md"] = render_markdown(all_points).encode("utf-8") if has_any else None
    return files

