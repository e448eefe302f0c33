"""Test MRR against |Θ| over the size sweep, ours (one protocol) next to the paper's Tables 5–6."""

from __future__ import annotations

import io

import pandas as pd

from ..schema import metric_key
from .tables import candidates
from .common import PAPER_TEXT, Variant
from .paper import DATASET_LABELS, MODEL_LABELS, MODELS
from .runs import RunPool

COLORS = {"distmult": "tab:blue", "kd_rel_distmult": "tab:orange", "kd_distmult": "tab:green"}


def plot_mrr_vs_params(pool: RunPool, paper: pd.DataFrame, dataset: str, variant: Variant = PAPER_TEXT) -> bytes | None:
    """PNG bytes: test MRR against |Θ| (log x) over the size sweep (clean data, no calibration); paper dashed.

    ``pool`` holds the runs of ``variant``; the y axis is its test split. One point per model and
    size: the run preferred for that cell (paper settings, then newest). ``None`` if the dataset
    has no such runs. The PNG carries no timestamp (same runs, same bytes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, col = pool.runs, metric_key(variant.test_split, "mrr")
    sweep = runs[(runs.dataset == dataset) & (runs.calibration == "none") & (runs.noise.abs() < 1e-9)
                 & runs[col].notna() & runs["params"].notna()] if not runs.empty else runs
    if sweep.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for model in MODELS:
        pts = candidates(sweep, dataset, model).drop_duplicates("dim", keep="first").sort_values("params")
        if not pts.empty:
            marked = pts["deviations"] != ""
            ax.plot(pts["params"], pts[col], "-o", color=COLORS[model], ms=4, label=f"{MODEL_LABELS[model]} (ours)")
            if marked.any():
                ax.plot(pts.loc[marked, "params"], pts.loc[marked, col], "x", color="black", ms=6)
        pp = paper[(paper.table.isin([5, 6])) & (paper.dataset == dataset) & (paper.model == model)
                   & (paper.kind == "run")].sort_values("params")
        if not pp.empty:
            ax.plot(pp["params"], pp["mrr"], "--", color=COLORS[model], alpha=0.45, lw=1,
                    label=f"{MODEL_LABELS[model]} (paper, Tables 5–6)")
    if (sweep["deviations"] != "").any():
        ax.plot([], [], "x", color="black", label="not at paper settings")
    ax.set_xscale("log")
    ax.set_xlabel("|Θ| (number of parameters, log scale)")
    ax.set_ylabel("test MRR (filtered)" if variant.test_split == "test" else "test MRR (the authors' 2022 test split)")
    title = f"{DATASET_LABELS[dataset]}: test MRR vs. parameters (clean data, no calibration)"
    ax.set_title(title if variant == PAPER_TEXT else f"{title}\n{variant.label}", fontsize=None if variant == PAPER_TEXT else 10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return png_bytes(fig)


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, laid out tightly, without the software tag (so a rebuild is
    byte-identical), and closed."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=130, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
