"""Cell-level agreement with the paper (kdkge.reports.agreement) against direct formulas."""

import pytest

from kdkge.reports.agreement import CLOSE, agreement, mrr_pairs, render_agreement
from kdkge.reports.common import PAPER_CODE, PAPER_TEXT
from kdkge.reports.tables import Cell, Row, Table


def _spearman_slow(x, y):
    """1 − 6·Σd²/(n(n²−1)) on ranks, valid without ties."""
    rank = lambda v: {value: i for i, value in enumerate(sorted(v))}
    rx, ry = rank(x), rank(y)
    n = len(x)
    return 1 - 6 * sum((rx[a] - ry[b]) ** 2 for a, b in zip(x, y)) / (n * (n * n - 1))


def test_agreement_equals_direct_formulas():
    pairs = [(0.50, 0.55), (0.40, 0.30), (0.60, 0.62), (0.70, 0.90), (0.20, 0.21), (0.30, 0.36)]
    a = agreement(pairs)
    deltas = [0.05, -0.10, 0.02, 0.20, 0.01, 0.06]
    assert a.n == 6
    assert a.mean_delta == pytest.approx(sum(deltas) / 6, abs=1e-12)
    assert a.median_abs_delta == pytest.approx((0.05 + 0.06) / 2, abs=1e-12)  # sorted |Δ|: .01 .02 .05 .06 .10 .20
    assert a.share_close == pytest.approx(3 / 6)  # .05 counts as close (0.55 − 0.50 is 0.05000000000000004 in floats)
    paper, ours = [p for p, _ in pairs], [o for _, o in pairs]
    assert a.spearman == pytest.approx(_spearman_slow(paper, ours), abs=1e-12)
    assert CLOSE == 0.05


def test_within_the_seed_spread_counts_cells_with_a_sigma_only():
    a = agreement([(0.5, 0.6, 0.05), (0.5, 0.61, 0.05), (0.5, 0.2, 0.2), (0.5, 0.9), (0.5, 0.5, float("nan"))])
    assert a.in_spread == (2, 3)  # |Δ| .10 ≤ 2·.05 in (boundary), .11 > .10 out, .30 ≤ .40 in; no σ / NaN σ: not judged
    assert agreement([(0.5, 0.6)]).in_spread is None


def test_agreement_odd_count_small_sets_and_constants():
    a = agreement([(0.1, 0.2), (0.2, 0.2), (0.3, 0.0), (0.4, 0.5), (0.5, 0.5)])
    assert a.median_abs_delta == pytest.approx(0.1)  # |Δ|: .1 0 .3 .1 0 → sorted 0 0 .1 .1 .3
    assert agreement([]) is None
    assert agreement([(0.1, 0.2), (0.2, 0.3), (0.3, 0.1)]).spearman is None  # too few cells to rank
    assert agreement([(0.1, 0.5)] * 2 + [(0.2, 0.5), (0.3, 0.5), (0.4, 0.5)]).spearman is None  # ours constant


def _table(variant):
    def cell(ds, paper, ours, run=True):
        return Cell(ds, values={"mrr": ours}, run_id="r" if run else None, paper={"mrr": paper})

    rows = [Row("a", "distmult", cells={"umls": cell("umls", 0.5, 0.4), "kinship": cell("kinship", 0.6, 0.6)}),
            Row("b", "distmult", split="train", cells={"umls": cell("umls", 0.9, 0.1)}),  # training-set row: out
            Row("c", "distmult", kind="avg", cells={"umls": cell("umls", 0.5, 0.1)}),  # average: out
            Row("d", "kd_distmult", cells={"umls": cell("umls", 0.3, 0.35), "kinship": cell("kinship", 0.2, 0.9, run=False)}),
            Row("e", "kd_distmult", cells={"umls": cell("umls", None, 0.35)})]  # the paper prints none: out
    return Table(2, "t", 0.0, rows, variant=variant)


def test_pairs_take_run_rows_with_both_numbers_only():
    table = _table(PAPER_CODE)
    assert mrr_pairs(table, "umls") == [(0.5, 0.4, None), (0.3, 0.35, None)]
    assert mrr_pairs(table, "kinship") == [(0.6, 0.6, None)]
    assert mrr_pairs(table, "umls", {"kd_distmult": 0.03}) == [(0.5, 0.4, None), (0.3, 0.35, 0.03)]


def test_render_lists_each_variant_and_dataset_with_cells():
    lines = render_agreement({PAPER_CODE: _table(PAPER_CODE), PAPER_TEXT: Table(2, "t", 0.0, [], variant=PAPER_TEXT)})
    rows = [line for line in lines if line.startswith("| paper_")]
    assert rows == ["| paper_code, 2022 split | UMLS | 2 | -.025 | .075 | 50 % | — | — |",
                    "| paper_code, 2022 split | KINSHIP | 1 | ±.000 | .000 | 100 % | — | — |"]
    # σ per (dataset, model): UMLS distmult .04 (|Δ| .10 > .08: out), kd_distmult .03 (|Δ| .05 ≤ .06: in)
    sigmas = {PAPER_CODE: {("umls", "distmult"): 0.04, ("umls", "kd_distmult"): 0.03, ("kinship", "kd_distmult"): 0.5}}
    rows = [line for line in render_agreement({PAPER_CODE: _table(PAPER_CODE)}, sigmas) if line.startswith("| paper_")]
    assert rows == ["| paper_code, 2022 split | UMLS | 2 | -.025 | .075 | 50 % | 1 of 2 | — |",
                    "| paper_code, 2022 split | KINSHIP | 1 | ±.000 | .000 | 100 % | — | — |"]  # no σ for its distmult
    assert render_agreement({PAPER_TEXT: Table(2, "t", 0.0, [], variant=PAPER_TEXT)}) == []
