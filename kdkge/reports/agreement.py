"""How closely one table's cells agree with the paper's, per protocol and dataset.

For the test-MRR cells of a table that have both the paper's number ``p_i`` and ours ``o_i`` (one
run each, seed 1; averages and "on training set" rows left out), with ``Δ_i = o_i − p_i``:

* mean Δ: ``Σ Δ_i / n`` (a systematic offset, e.g. the clean split's easier test set);
* median ``|Δ_i|`` and the share of cells with ``|Δ_i| ≤ .05`` (how far a single cell may be off);
* Spearman's ρ between ``p`` and ``o`` (``scipy.stats.spearmanr``): do our cells rank the
  configurations as the paper's do?  With one seed per cell this is bounded by the seed noise:
  on the 2022 split a cell's MRR moves by a seed-std of up to .07 (``results/seeds.md``);
* within the seed spread: the share of cells with ``|Δ_i| ≤ 2·σ_m``, where ``σ_m`` is the sample
  standard deviation over seeds 1–5 of the same model and dataset at Table 2's size, same protocol
  and split (Table 2 over seeds).  A proxy: the seed spread at the cell's own size is not measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .common import EM_DASH, PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT, Variant, fmt_metric, fmt_signed
from .paper import DATASET_LABELS, DATASETS
from .tables import Table

#: a cell "agrees" when ours is within this much test MRR of the paper's
CLOSE = 0.05
#: fewer cells than this get no rank correlation (with 3 or 4 it is one of a handful of values)
MIN_RANKED = 5
#: the columns compared with the paper, in order
COMPARED = (PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT)


@dataclass(frozen=True)
class Agreement:
    n: int
    mean_delta: float
    median_abs_delta: float
    share_close: float
    spearman: float | None  # None below MIN_RANKED cells or when one side is constant
    in_spread: tuple[int, int] | None = None  # (cells with |Δ| ≤ 2σ, cells with a σ); None: no σ known


class Pair(NamedTuple):
    """One cell: the paper's test MRR, ours, and our seed standard deviation for its model (if known)."""

    paper: float
    ours: float
    sigma: float | None = None


def agreement(pairs: Sequence[tuple]) -> Agreement | None:
    """:class:`Agreement` of ``(paper, ours[, σ])`` pairs (:class:`Pair`); None for no pairs."""
    from scipy.stats import spearmanr

    if not pairs:
        return None
    pairs = [Pair(*p) for p in pairs]
    paper = [p.paper for p in pairs]
    ours = [p.ours for p in pairs]
    deltas = [p.ours - p.paper for p in pairs]
    judged = [abs(p.ours - p.paper) <= 2 * p.sigma + 1e-12 for p in pairs if p.sigma is not None and not math.isnan(p.sigma)]
    absolute = [abs(d) for d in deltas]
    n = len(pairs)
    rho = None
    if n >= MIN_RANKED and len(set(paper)) > 1 and len(set(ours)) > 1:
        rho = float(spearmanr(paper, ours).statistic)
    return Agreement(n, sum(deltas) / n, statistics.median(absolute), sum(a <= CLOSE + 1e-12 for a in absolute) / n,
                     None if rho is None or math.isnan(rho) else rho, (sum(judged), len(judged)) if judged else None)


def mrr_pairs(table: Table, dataset: str, sigma: Mapping[str, float] | None = None) -> list[Pair]:
    """:class:`Pair` of every run row of ``table`` on ``dataset`` with both test MRRs; ``sigma``: model → σ."""
    out = []
    for row in table.rows:
        if row.kind != "run" or row.split != "test":
            continue
        cell = row.cells.get(dataset)
        if cell is None or not cell.run_id:
            continue
        paper, ours = cell.paper.get("mrr"), cell.values.get("mrr")
        if paper is not None and ours is not None:
            out.append(Pair(float(paper), float(ours), (sigma or {}).get(row.model)))
    return out


def _fmt(a: Agreement) -> list[str]:
    rho = EM_DASH if a.spearman is None else f"{a.spearman:+.2f}".replace("0.", ".", 1)  # two decimals, the paper's style
    spread = EM_DASH if a.in_spread is None else f"{a.in_spread[0]} of {a.in_spread[1]}"
    return [str(a.n), fmt_signed(a.mean_delta), fmt_metric(a.median_abs_delta), f"{100 * a.share_close:.0f} %", spread, rho]


def render_agreement(tables: dict[Variant, Table], sigmas: Mapping[Variant, Mapping[tuple[str, str], float]] | None = None
                     ) -> list[str]:
    """Markdown: one line per compared column and dataset with cells; [] when there are none.

    ``sigmas``: per compared column, (dataset, model) → the seed standard deviation of test MRR."""
    lines = []
    for v in COMPARED:
        if v not in tables:
            continue
        for ds in DATASETS:
            known = {m: s for (d, m), s in ((sigmas or {}).get(v) or {}).items() if d == ds}
            a = agreement(mrr_pairs(tables[v], ds, known))
            if a is not None:
                lines.append("| " + " | ".join([v.label, DATASET_LABELS[ds], *_fmt(a)]) + " |")
    if not lines:
        return []
    return ["", f"Agreement with the paper, test MRR of the cells with a run (seed 1 each; averages and training-set "
                f"rows left out): Δ = ours − paper; close: |Δ| ≤ {fmt_metric(CLOSE)}; ρ: Spearman's rank correlation of "
                f"ours with the paper's over the cells (— below {MIN_RANKED} cells); within 2σ: cells with |Δ| ≤ twice "
                f"our seed standard deviation σ of the same model and dataset (Table 2's size, seeds 1–5, same protocol "
                f"and split; a proxy, the spread at each cell's own size is not measured) (`kdkge/reports/agreement.py`).",
            "", "| ours | dataset | cells | mean Δ | median \\|Δ\\| | close | within 2σ | ρ |",
            "|---|---|---:|---:|---:|---:|---:|---:|", *lines]
