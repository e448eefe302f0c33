"""results/equal_budget.*: the members of each budget over seeds, checked against slow formulas; partial data."""

from __future__ import annotations

import math

import pytest

import slow_stats as slow
from raw_runs import raw_frame, raw_run
from kdkge.reports import equal_budget as EB
from kdkge.reports.common import PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT
from kdkge.reports.runs import normalise_runs

KD = [0.40, 0.43, 0.41, 0.45, 0.42]  # KD-DistMult d=256, seeds 1–5, the 2022 split
DM = [0.38, 0.445, 0.37, 0.405, 0.39]  # DistMult d=16: distinct |differences|, so the exact Wilcoxon applies
KR = [0.39, 0.415, 0.38]  # KD-Rel-DistMult d=25: seeds 1–3 only (distinct |differences| to KD)
CLEAN = 0.3  # the clean split is the 2022 split + .3 here

BUDGET = EB.Budget("umls", "kd_distmult", 256, 3728, (
    EB.Member("kd_distmult", 256, planned_params=3728), EB.Member("distmult", 16, planned_params=3760),
    EB.Member("kd_rel_distmult", 25, planned_params=4015),
    *(EB.Member("scaled_distmult", 256, v) for v in EB.SCALED_VARIANTS)))


def _rows():
    rows = []
    for model, dim, values in (("kd_distmult", 256, KD), ("distmult", 16, DM), ("kd_rel_distmult", 25, KR)):
        for seed, v in enumerate(values, start=1):
            rows.append(raw_run("umls", model, dim, seed=seed, paper_test_mrr=v, test_mrr=v + CLEAN))
    rows.append(raw_run("umls", "distmult", 16, seed=1, paper_test_mrr=0.99, test_mrr=0.99, epochs=5))  # not 1000 epochs
    rows.append(raw_run("umls", "distmult", 16, seed=6, paper_test_mrr=0.99, test_mrr=0.99))  # not a planned seed
    rows.append(raw_run("umls", "distmult", 16, seed=2, paper_test_mrr=0.99, test_mrr=0.99, calibration="ls"))
    rows.append(raw_run("umls", "distmult", 16, seed=3, paper_test_mrr=0.99, test_mrr=0.99, status="FAILED"))
    rows.append(raw_run("umls", "scaled_distmult", 256, seed=1, paper_test_mrr=0.41, test_mrr=0.71, variant="abs"))
    rows.append(raw_run("umls", "kd_distmult", 256, seed=1, test_mrr=0.6, protocol="paper_text"))
    rows.append(raw_run("umls", "kd_distmult", 256, seed=2, test_mrr=0.7, protocol="paper_text"))
    return rows


@pytest.fixture(scope="module")
def pool():
    return normalise_runs(raw_frame(_rows()))


@pytest.fixture(scope="module")
def frames(pool):
    return {v: EB.build(pool.of(v), [BUDGET], v) for v in (PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT)}


def _member(df, model, variant=""):
    return df[(df.model == model) & (df.scaled_variant == variant)].iloc[0]


def test_the_constants_are_the_sweeps():
    from kdkge import equal_budget
    from kdkge.models.scaled_distmult import VARIANTS

    assert EB.SEEDS == equal_budget.SEEDS and EB.SCALED_VARIANTS == VARIANTS


def test_budgets_from_the_plan_hold_the_sweeps_members():
    rows = [{"dataset": "umls", "model": "kd_distmult", "dim": 256, "params": 3728, "distmult": (16, 3760),
             "kd_rel_distmult": (25, 4015)},
            {"dataset": "kinship", "model": "kd_rel_distmult", "dim": 400, "params": 45420, "distmult": (280, 45360),
             "kd_distmult": (80656, 45440)}]
    a, b = EB.budgets_from_plan(rows)
    assert [(m.model, m.dim, m.variant) for m in a.members] == [
        ("kd_distmult", 256, ""), ("distmult", 16, ""), ("kd_rel_distmult", 25, ""), ("scaled_distmult", 256, "dot"),
        ("scaled_distmult", 256, "abs"), ("scaled_distmult", 256, "temperature")]
    assert [(m.model, m.dim, m.planned_params) for m in b.members] == [
        ("kd_rel_distmult", 400, 45420), ("distmult", 280, 45360), ("kd_distmult", 80656, 45440)]
    counted = EB.budgets_from_plan(rows, lambda model, dim, dataset, variant: len(variant) * 1000 + dim)[0]
    assert [m.planned_params for m in counted.members[3:]] == [3256, 3256, 11256]


def test_means_stds_and_t_intervals_match_slow_formulas(frames):
    df = frames[PAPER_CODE]
    kd = _member(df, "kd_distmult")
    assert (kd.n, kd.N, kd.seeds) == (5, 5, "1,2,3,4,5")
    assert kd.mrr_mean == pytest.approx(slow.mean(KD), abs=1e-12)
    assert kd.mrr_std == pytest.approx(slow.std(KD), abs=1e-12)
    assert (kd.mrr_ci_low, kd.mrr_ci_high) == pytest.approx(slow.t_interval(KD), abs=1e-7)
    assert kd.hits_1_mean == pytest.approx(slow.mean(KD) - 0.1)
    dm = _member(df, "distmult")  # the decoys (5 epochs, seed 6, LS, FAILED) are not counted
    assert (dm.n, dm.mrr_mean) == (5, pytest.approx(slow.mean(DM)))
    kr = _member(df, "kd_rel_distmult")
    assert (kr.n, kr.seeds) == (3, "1,2,3")
    assert (kr.mrr_ci_low, kr.mrr_ci_high) == pytest.approx(slow.t_interval(KR), abs=1e-7)
    # the clean split of the same runs
    clean = _member(frames[PAPER_CODE_CLEAN], "kd_distmult")
    assert clean.mrr_mean == pytest.approx(slow.mean(KD) + CLEAN)


def test_paired_tests_match_slow_formulas(frames):
    df = frames[PAPER_CODE]
    dm = _member(df, "distmult")
    assert (dm.pair_n, dm.pair_wins, dm.pair_losses) == (5, 4, 1)
    assert dm.pair_mean_diff == pytest.approx(slow.mean(KD) - slow.mean(DM))
    assert dm.pair_t_p == pytest.approx(slow.paired_t_p(KD, DM), abs=1e-6)
    assert dm.pair_wilcoxon_p == pytest.approx(slow.wilcoxon_exact_p(KD, DM)) == pytest.approx(4 / 32)
    assert dm.pair_sign_p == pytest.approx(slow.sign_p(4, 1)) == pytest.approx(12 / 32)
    assert dm.pair_floor == 0.0625
    kr = _member(df, "kd_rel_distmult")  # paired on the 3 seeds both have
    assert kr.pair_n == 3 and kr.pair_t_p == pytest.approx(slow.paired_t_p(KD[:3], KR), abs=1e-6)
    assert kr.pair_wilcoxon_p == pytest.approx(slow.wilcoxon_exact_p(KD[:3], KR))
    assert math.isnan(_member(df, "kd_distmult").pair_t_p)  # no test against itself


def test_partial_data_renders_honestly(frames):
    text = EB.render_markdown(frames, [BUDGET])
    section = text.split("\n## paper_code, 2022 split")[1].split("\n## ")[0]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in section.splitlines() if line.startswith("| ")}
    assert "| KD-Rel-DistMult | 25 | " in rows["KD-Rel-DistMult"] and "| 3/5 | .395 ± .018 |" in rows["KD-Rel-DistMult"]
    assert "| 5/5 | .422 ± .019 | [.398, .446] |" in rows["KD-DistMult"]
    assert "| +.024 (n=5) | 4/1 | " in rows["DistMult"] and "| 0.1250 (0.0625) |" in rows["DistMult"]
    dot = rows["Scaled DistMult (dot)"]
    assert "| 0/5 | — | — |" in dot and dot.endswith("| — | — | — | — |")
    assert "| 1/5 | .410 | — |" in rows["Scaled DistMult (abs)"]  # one seed: no std, no interval
    assert "with 5 seeds or fewer only the t-test can reach 5 %" in text
    text_section = text.split("\n## paper_text")[1]
    assert "| KD-DistMult | 256 | " in text_section and "| 2/5 | .650 ± .071 |" in text_section
    assert "| DistMult | 16 | — | 0/5 |" in text_section  # no run, no planned |Θ| under paper_text
    assert "| DistMult | 16 | 3,760* | 0/5 |" in EB.render_markdown(
        {PAPER_CODE: EB.build(normalise_runs(raw_frame([raw_run("umls", "kd_distmult", 256, paper_test_mrr=0.4)])),
                              [BUDGET], PAPER_CODE)}, [BUDGET])  # planned |Θ| marked *


def test_render_writes_three_files_or_none(pool):
    pools = {v: pool.of(v) for v in (PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT)}
    files = EB.render(pools, [BUDGET])
    assert sorted(files) == ["equal_budget.csv", "equal_budget.md", "equal_budget.tex"]
    assert all(files.values())
    csv = files["equal_budget.csv"].decode()
    assert csv.splitlines()[0].startswith("protocol,split,dataset,budget_model,budget_dim,budget_params,model,")
    assert len(csv.splitlines()) == 1 + 3 * len(BUDGET.members)
    assert r"\begin{tabular}" in files["equal_budget.tex"].decode()
    empty = normalise_runs(raw_frame([raw_run("kinship", "distmult", 9, paper_test_mrr=0.4)]))
    assert set(EB.render({v: empty.of(v) for v in pools}, [BUDGET]).values()) == {None}
