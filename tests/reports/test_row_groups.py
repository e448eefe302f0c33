"""The REPRODUCTION.md table of the 2022 split's row groups (kdkge.reports.row_groups)."""

import pandas as pd

from kdkge.reports.paper import load_paper_tables
from kdkge.reports.row_groups import group_sizes, render_row_groups
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
