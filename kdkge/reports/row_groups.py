"""What the paper's test MRR is made of: Table 2's runs on the 2022 test split, by row group.

The authors' test split has three kinds of rows (:mod:`kdkge.split_2022`): the true test triples,
inverse rows whose tail is a *validation* subject, and ``(NaN, NaN, ·)`` rows decided by the NaN
relation's initial vector.  With ``n_g`` rows and MRR ``m_g`` in group ``g``, the logged
``paper_test_mrr = Σ_g n_g m_g / N``.  Two derived columns:

* **NaN rows at chance**: ``(n_true m_true + n_inv m_inv + n_nan c) / N`` with ``c`` the NaN rows'
  chance MRR — the number with uninformative NaN rows;
* **NaN-row MRR the paper's number needs**: ``(P·N − n_true m_true − n_inv m_inv) / n_nan`` with
  ``P`` the paper's MRR and our true/inverse means — whether the paper's number is within reach of
  our model with some outcome of the NaN-row lottery (it is when the value lies in [0, 1]).
"""

from __future__ import annotations

import pandas as pd

from ..lottery_2022 import DRAWS
from ..schema import PAPER_TEST_LOTTERY_MAX, PAPER_TEST_LOTTERY_MEAN, PAPER_TEST_LOTTERY_QUANTILES, lottery_quantile_metric
from .ablation import Condition, seed_frame, values
from .common import EM_DASH, fmt_metric, fmt_pm
from .paper import DATASET_LABELS, DATASETS, MODEL_LABELS, MODELS
from .runs import RunPool

CODE = ("paper_code", "softmax_ce")


def group_sizes(dataset: str) -> dict[str, int]:
    """Rows per group of the dataset's 2022 test split (computed from the data)."""
    from ..data_2022 import load_dataset_2022
    from ..split_2022 import row_groups

    return {g: int(mask.sum()) for g, mask in row_groups(load_dataset_2022(dataset)).items()}


def _series(frame: pd.DataFrame, dataset: str, model: str, column: str) -> pd.Series:
    split, metric = column.rsplit("_", 1)
    return values(frame, Condition(*CODE, split, "final"), dataset, model, metric)


def _mean_std(v: pd.Series) -> str:
    if v.empty:
        return EM_DASH
    return fmt_pm(v.mean(), v.std(ddof=1) if len(v) > 1 else None)


def _with_range(v: pd.Series) -> str:
    """``mean ± std [min, max]`` over seeds (the NaN rows' lottery shows in the range)."""
    if len(v) < 2:
        return _mean_std(v)
    return f"{_mean_std(v)} [{fmt_metric(v.min())}, {fmt_metric(v.max())}]"


def _paper_mrr(paper: pd.DataFrame, dataset: str, model: str) -> float | None:
    p2 = paper[(paper.table == 2) & (paper.split == "test") & (paper.kind == "run")
               & (paper.dataset == dataset) & (paper.model == model)]
    return None if p2.empty else float(p2["mrr"].iloc[0])


def _with_nan_rows(sizes: dict[str, int], true, inverse, nan):
    """The 2022 MRR of true/inverse row MRRs with the NaN rows at ``nan``: ``Σ_g n_g m_g / N``."""
    return (sizes["true"] * true + sizes["inverse"] * inverse + sizes["nan"] * nan) / sum(sizes.values())


def _nan_needed(sizes: dict[str, int], true, inverse, paper_mrr: float):
    """The NaN-row MRR that gives ``paper_mrr``: ``(P·N − n_true m_true − n_inv m_inv) / n_nan``."""
    return (paper_mrr * sum(sizes.values()) - (sizes["true"] * true + sizes["inverse"] * inverse)) / sizes["nan"]


def render_row_groups(pool: RunPool, paper: pd.DataFrame) -> list[str]:
    """The REPRODUCTION.md subsection on the 2022 split's row groups (Markdown lines)."""
    frame = seed_frame(pool, paper)
    head = ["configuration", "rows true / inverse / NaN", "seeds", "MRR true rows", "inverse rows", "NaN rows",
            "NaN chance", "2022 MRR (logged)", "with NaN rows at chance", "the paper", "NaN-row MRR the paper needs"]
    lines = ["### What the 2022 test MRR is made of", "",
             "Runs of `protocol=paper_code` (softmax CE, final epoch) at Table 2's configurations. The authors' test "
             "split mixes three kinds of rows (`kdkge/split_2022.py`): the true test triples, inverse rows whose tail "
             "is a *validation* subject (right only by coincidence), and `(NaN, NaN, ·)` rows. No training triple has "
             "the NaN relation, so its vector keeps its initial value and the NaN rows' ranks are a lottery drawn by "
             "the seed; their one shared query is filtered down to 25 candidates on UMLS and 2 on KINSHIP. Mean ± std "
             "over seeds, and for the NaN rows [min, max] over seeds. The last column is the MRR the NaN rows would need for our model's true and inverse rows "
             "to give the paper's number: within [0, 1] the paper's number is one outcome of that lottery.", "",
             "| " + " | ".join(head) + " |", "|---|---|---:|" + "---:|" * (len(head) - 3)]
    for ds in DATASETS:
        sizes = group_sizes(ds)
        for m in MODELS:
            true, inv, nan = (_series(frame, ds, m, f"paper_test_{g}_mrr") for g in ("true", "inverse", "nan"))
            chance = _series(frame, ds, m, "paper_test_nan_chance_mrr")
            logged = _series(frame, ds, m, "paper_test_mrr")
            seeds = sorted(set(true.index) & set(inv.index) & set(nan.index))
            at_chance = needed = EM_DASH
            if seeds and not chance.empty:
                at_chance = _mean_std(_with_nan_rows(sizes, true.loc[seeds], inv.loc[seeds], chance.iloc[0]))
                paper_mrr = _paper_mrr(paper, ds, m)
                if paper_mrr is not None:
                    need = _nan_needed(sizes, true.loc[seeds], inv.loc[seeds], paper_mrr)
                    needed = _mean_std(need) + ("" if ((need >= 0) & (need <= 1)).all() else " (out of reach)")
            paper_mrr = _paper_mrr(paper, ds, m)
            lines.append("| " + " | ".join([
                f"{DATASET_LABELS[ds]} {MODEL_LABELS[m]}", f"{sizes['true']} / {sizes['inverse']} / {sizes['nan']}",
                str(len(seeds)), _mean_std(true), _mean_std(inv), _with_range(nan),
                EM_DASH if chance.empty else fmt_metric(chance.iloc[0]), _mean_std(logged), at_chance,
                EM_DASH if paper_mrr is None else fmt_metric(paper_mrr), needed]) + " |")
    return lines


def _band(value: float, run: pd.Series) -> str:
    """Where ``value`` lies in one run's lottery: ``q90–q95``, ``> max`` …"""
    cuts = [(f"q{p:02d}", run[lottery_quantile_metric(p)]) for p in PAPER_TEST_LOTTERY_QUANTILES]
    cuts.append(("max", run[PAPER_TEST_LOTTERY_MAX]))
    if value <= cuts[0][1]:
        return f"≤ {cuts[0][0]}"
    for (lo, lo_v), (hi, hi_v) in zip(cuts, cuts[1:]):
        if lo_v < value <= hi_v:
            return f"{lo}–{hi}"
    return "> max"


def render_lottery(pool: RunPool, paper: pd.DataFrame) -> list[str]:
    """The NaN rows' lottery redrawn (:mod:`kdkge.lottery_2022`), per Table 2 configuration (Markdown lines)."""
    frame = seed_frame(pool, paper)
    lines = ["### The NaN rows' lottery, redrawn", "",
             "`python -m kdkge.backfill_2022` redraws each run's never-trained NaN relation vector "
             f"{DRAWS:,} times from its initial distribution, everything else as trained, and ranks the NaN rows each "
             "time as the authors' evaluation does (`kdkge/lottery_2022.py`): the NaN-row MRRs this trained model "
             "could have drawn. Per configuration, mean over seeds of each run's lottery percentiles; "
             "the 2022 MRR the run would log with its NaN rows at its lottery's median, 95th percentile and best "
             "draw; and, per seed, where the NaN-row MRR that the paper's number needs lies in that seed's lottery.",
             "", "| configuration | seeds | NaN-row MRR drawn: q05 / q50 / q95 / max | 2022 MRR at q50 / q95 / max "
             "| the paper | NaN-row MRR needed | where it lies, per seed |",
             "|---|---:|---:|---:|---:|---:|---|"]
    if frame.empty or frame.get(PAPER_TEST_LOTTERY_MEAN, pd.Series(dtype=float)).isna().all():
        return lines + ["| no run has the lottery metrics yet (`python -m kdkge.backfill_2022`) | | | | | | |"]
    cols = [lottery_quantile_metric(p) for p in PAPER_TEST_LOTTERY_QUANTILES] \
        + [PAPER_TEST_LOTTERY_MAX, "paper_test_true_mrr", "paper_test_inverse_mrr"]
    q05, q50, q95 = (lottery_quantile_metric(p) for p in (5, 50, 95))
    for ds in DATASETS:
        sizes = group_sizes(ds)
        for m in MODELS:
            runs = frame[(frame.protocol == CODE[0]) & (frame.loss == CODE[1]) & (frame.dataset == ds)
                         & (frame.model == m)].dropna(subset=cols).sort_values("seed")
            if runs.empty:
                continue
            true, inverse = runs["paper_test_true_mrr"], runs["paper_test_inverse_mrr"]
            at = " / ".join(fmt_metric(_with_nan_rows(sizes, true, inverse, runs[c]).mean()) for c in (q50, q95, PAPER_TEST_LOTTERY_MAX))
            drawn = " / ".join(fmt_metric(runs[c].mean()) for c in (q05, q50, q95, PAPER_TEST_LOTTERY_MAX))
            paper_mrr = _paper_mrr(paper, ds, m)
            needed, where = EM_DASH, EM_DASH
            if paper_mrr is not None:
                need = _nan_needed(sizes, true, inverse, paper_mrr)
                needed = _mean_std(need)
                where = ", ".join(f"s{int(run.seed)} {_band(v, run)}" for v, (_, run) in zip(need, runs.iterrows()))
            lines.append("| " + " | ".join([
                f"{DATASET_LABELS[ds]} {MODEL_LABELS[m]}", str(len(runs)), drawn, at,
                EM_DASH if paper_mrr is None else fmt_metric(paper_mrr), needed, where]) + " |")
    return lines
