"""The REPRODUCTION.md table of the 2022 split's row groups (kdkge.reports.row_groups)."""

import pandas as pd

from kdkge.reports.paper import load_paper_tables
from kdkge.reports.row_groups import group_sizes, render_lottery, render_row_groups
from kdkge.schema import PAPER_TEST_LOTTERY_QUANTILES
from kdkge.reports.runs import RUN_COLUMNS, RunPool


def _run(seed, true, inverse, nan, dim=289, model="distmult"):
    sizes = {"true": 661, "inverse": 661, "nan": 643}
    row = {c: float("nan") for c in RUN_COLUMNS}
    row |= {"run_id": f"r{seed}", "model": model, "dataset": "umls", "calibration": "none", "noise": 0.0, "dim": dim,
            "seed": float(seed), "epochs": 1000.0, "lr": 0.01, "batch_size": 1024.0, "strategy": "1vsall",
            "protocol": "paper_code", "loss": "softmax_ce", "start_time": pd.Timestamp(2026, 1, 1, seed, tz="UTC"),
            "paper_test_true_mrr": true, "paper_test_inverse_mrr": inverse, "paper_test_nan_mrr": nan,
            "paper_test_nan_chance_mrr": 0.153,
            "paper_test_mrr": (661 * true + 661 * inverse + 643 * nan) / sum(sizes.values())}
    return row


def test_group_sizes_come_from_the_data():
    assert group_sizes("umls") == {"true": 661, "inverse": 661, "nan": 643}


def test_row_group_table_recomposes_and_solves_for_the_nan_rows():
    pool = RunPool(pd.DataFrame([_run(1, 0.9, 0.3, 0.5), _run(2, 0.8, 0.2, 0.7)]))
    paper = load_paper_tables()
    lines = render_row_groups(pool, paper)
    [row] = [line for line in lines if line.startswith("| UMLS DistMult")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "2" and cells[3] == ".850 ± .071" and cells[5] == ".600 ± .141 [.500, .700]"
    # the NaN-row MRR the paper's .517 needs, per seed, from our true/inverse rows (slow formula)
    needs = [(0.517 * 1965 - 661 * t - 661 * i) / 643 for t, i in ((0.9, 0.3), (0.8, 0.2))]
    mean = sum(needs) / 2
    std = (sum((x - mean) ** 2 for x in needs) / 1) ** 0.5
    assert cells[10] == f"{mean:.3f}".lstrip("0") + " ± " + f"{std:.3f}".lstrip("0")
    # NaN rows at chance: (661·true + 661·inverse + 643·.153)/1965 per seed
    at_chance = [(661 * t + 661 * i + 643 * 0.153) / 1965 for t, i in ((0.9, 0.3), (0.8, 0.2))]
    assert cells[8].startswith(f"{sum(at_chance) / 2:.3f}".lstrip("0"))
    # configurations without runs say so
    [kd] = [line for line in lines if line.startswith("| UMLS KD-DistMult")]
    assert "| 0 |" in kd


def _with_lottery(row, q50, spread=0.1):
    """A run whose lottery percentiles are q50 + spread · (p − 50) / 50, its best draw q50 + 1.2 · spread."""
    row = dict(row)
    for p in PAPER_TEST_LOTTERY_QUANTILES:
        row[f"paper_test_nan_lottery_mrr_q{p:02d}"] = q50 + spread * (p - 50) / 50
    row |= {"paper_test_nan_lottery_mrr_max": q50 + 1.2 * spread, "paper_test_nan_lottery_mrr_mean": q50,
            "paper_test_nan_lottery_draws": 2000.0}
    return row


def test_lottery_table_says_where_the_needed_nan_row_mrr_lies_in_each_seeds_draws():
    # the paper's .517 needs NaN-row MRR (.517·1965 − 661·(true + inverse)) / 643: .4492 for seed 1, .6548 for seed 2
    needs = [(0.517 * 1965 - 661 * t - 661 * i) / 643 for t, i in ((0.9, 0.2), (0.8, 0.1))]
    assert [round(x, 4) for x in needs] == [0.4492, 0.6548]
    # seed 1's draws: q90 .440, q95 .450 (the need lies between); seed 2's best draw .420 (the need lies above)
    runs = [_with_lottery(_run(1, 0.9, 0.2, 0.3), q50=0.36), _with_lottery(_run(2, 0.8, 0.1, 0.3), q50=0.3)]
    lines = render_lottery(RunPool(pd.DataFrame(runs)), load_paper_tables())
    [row] = [line for line in lines if line.startswith("| UMLS DistMult")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2"
    assert cells[2] == ".240 / .330 / .420 / .450"  # q05 / q50 / q95 / max, mean over seeds
    # the 2022 MRR with the NaN rows at each run's median, 95th percentile and best draw, mean over seeds
    at = [sum((661 * t + 661 * i + 643 * x) / 1965 for (t, i), x in zip(((0.9, 0.2), (0.8, 0.1)), xs)) / 2
          for xs in ((0.36, 0.3), (0.45, 0.39), (0.48, 0.42))]
    assert cells[3] == " / ".join(f"{x:.3f}".lstrip("0") for x in at)
    assert cells[5] == f"{sum(needs) / 2:.3f}".lstrip("0") + " ± " + f"{abs(needs[0] - needs[1]) / 2 ** 0.5:.3f}".lstrip("0")
    assert cells[6] == "s1 q90–q95, s2 > max"
    # without the lottery metrics the table says how to get them
    bare = render_lottery(RunPool(pd.DataFrame([_run(1, 0.9, 0.2, 0.3)])), load_paper_tables())
    assert "backfill_2022" in bare[-1]
