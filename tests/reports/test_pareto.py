"""Pareto fronts of test MRR against |Θ|: the points over seeds, the front, the plots, pareto.md; the sweep."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import slow_stats as slow
from raw_runs import raw_frame, raw_run
from kdkge.reports import pareto
from kdkge.reports.common import PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT
from kdkge.reports.runs import normalise_runs

ROOT = Path(__file__).resolve().parents[2]

# (model, d, |Θ|, 2022-split MRR per seed)
POINTS = [
    ("distmult", 4, 1000, [0.50, 0.52, 0.54]),
    ("kd_rel_distmult", 4, 800, [0.45, 0.47]),  # cheaper than DistMult d=4 and worse: on the front (nothing cheaper)
    ("kd_distmult", 16, 1200, [0.51]),  # dearer than DistMult d=4 and worse: dominated
    ("kd_rel_distmult", 9, 1500, [0.60, 0.62, 0.58, 0.60, 0.61]),  # on the front
    ("distmult", 9, 1500, [0.55, 0.57]),  # same |Θ| as above, worse: dominated
    ("distmult", 16, 3000, [0.605]),  # best so far: on the front
    ("kd_distmult", 256, 5000, [0.58, 0.60]),  # dominated
]


def _rows():
    rows = []
    for model, dim, params, values in POINTS:
        for seed, v in enumerate(values, start=1):
            rows.append(raw_run("umls", model, dim, seed=seed, paper_test_mrr=v, test_mrr=1 - v, params=params))
    rows.append(raw_run("umls", "distmult", 4, seed=9, paper_test_mrr=0.99, test_mrr=0.99, params=1000, epochs=5))
    rows.append(raw_run("umls", "distmult", 4, seed=8, paper_test_mrr=0.99, test_mrr=0.99, params=1000, noise=0.1))
    rows.append(raw_run("umls", "scaled_distmult", 256, paper_test_mrr=0.99, test_mrr=0.99, params=100, variant="dot"))
    return rows


@pytest.fixture(scope="module")
def pool():
    return normalise_runs(raw_frame(_rows()))


def test_points_are_means_and_stds_over_seeds(pool):
    pts = pareto.points(pool.of(PAPER_CODE), "umls", PAPER_CODE)
    assert len(pts) == len(POINTS) and list(pts["params"]) == sorted(p[2] for p in POINTS)
    by = pts.set_index(["model", "dim"])
    for model, dim, params, values in POINTS:
        row = by.loc[(model, dim)]
        assert row["n"] == len(values) and row["params"] == params
        assert row["mrr_mean"] == pytest.approx(slow.mean(values))
        if len(values) > 1:
            assert row["mrr_std"] == pytest.approx(slow.std(values))
        else:
            assert math.isnan(row["mrr_std"])
    clean = pareto.points(pool.of(PAPER_CODE_CLEAN), "umls", PAPER_CODE_CLEAN).set_index(["model", "dim"])
    assert clean.loc[("distmult", 4), "mrr_mean"] == pytest.approx(1 - 0.52)  # the same runs on the clean split
    assert pareto.points(pool.of(PAPER_TEXT), "umls", PAPER_TEXT).empty
    assert pareto.points(pool.of(PAPER_CODE), "kinship", PAPER_CODE).empty


def _slow_front(points):
    """A point is on the front when no other has ≤ |Θ| and ≥ MRR, one strictly (all pairs compared)."""
    out = []
    for i, (model, dim, params, mrr) in enumerate(points):
        dominated = any((p2 <= params and m2 >= mrr and (p2 < params or m2 > mrr)) for j, (_, _, p2, m2) in
                        enumerate(points) if j != i)
        if not dominated:
            out.append((model, dim))
    return sorted(out, key=lambda md: next(p[2] for p in points if (p[0], p[1]) == md))


def test_the_front_is_the_undominated_points(pool):
    pts = pareto.points(pool.of(PAPER_CODE), "umls", PAPER_CODE)
    front = pareto.front(pts)
    expected = _slow_front([(m, d, p, slow.mean(v)) for m, d, p, v in POINTS])
    assert list(zip(front.model, front.dim)) == expected == [("kd_rel_distmult", 4), ("distmult", 4),
                                                             ("kd_rel_distmult", 9), ("distmult", 16)]
    assert pareto.front(pts.iloc[0:0]).empty


def test_plots_are_pngs_and_deterministic(pool):
    pts = pareto.points(pool.of(PAPER_CODE), "umls", PAPER_CODE)
    png = pareto.plot(pts, "umls", PAPER_CODE)
    assert png.startswith(b"\x89PNG") and png == pareto.plot(pts, "umls", PAPER_CODE)
    assert pareto.plot(pts.iloc[0:0], "umls", PAPER_CODE) is None


def test_render_writes_the_table_and_a_plot_per_dataset_and_protocol(pool):
    pools = {v: pool.of(v) for v in (PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT)}
    files = pareto.render(pools)
    assert sorted(files) == sorted(["pareto.md"] + [f"pareto_{ds}_{k}.png" for ds in ("umls", "kinship")
                                                    for k in ("paper_code", "paper_code_clean", "paper_text")])
    assert files["pareto_umls_paper_code.png"] and files["pareto_umls_paper_code_clean.png"]
    assert files["pareto_kinship_paper_code.png"] is None and files["pareto_umls_paper_text.png"] is None
    text = files["pareto.md"].decode()
    section = text.split("\n## UMLS, paper_code, 2022 split")[1].split("\n## ")[0]
    assert "7 points (DistMult 3 sizes, KD-Rel-DistMult 2 sizes, KD-DistMult 2 sizes); seeds per point: 1–5." in section
    assert "| 800 | 999 | KD-Rel-DistMult | 4 | 800 | 2 | .460 ± .014 |" in section
    assert "| 1,500 | 2,999 | KD-Rel-DistMult | 9 | 1,500 | 5 | .602 ± .015 |" in section
    assert "| 3,000 | ∞ | DistMult | 16 | 3,000 | 1 | .605 |" in section
    assert "DistMult 2 of 3, KD-Rel-DistMult 2 of 2, KD-DistMult 0 of 2" in section
    assert "## KINSHIP, paper_text" in text and "No runs (—)." in text
    empty = normalise_runs(pd.DataFrame())
    assert set(pareto.render({v: empty for v in pools}).values()) == {None}


def dry_run(sweep: str, tmp_path) -> str:
    """The plan that ``python train.py -m +sweep=<sweep>`` prints on an empty store (nothing trains)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    out = subprocess.run([sys.executable, "train.py", "-m", f"+sweep={sweep}", "hydra.sweeper.dry_run=true"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.slow
def test_the_pareto_sweep_plans_3000_runs_in_600_stacked_jobs(tmp_path):
    plan = dry_run("pareto", tmp_path)
    assert "3000 runs: 3000 to train in 600 jobs (600 of them stacked, holding 3000 runs)" in plan
    for name in ("distmult-umls-d1 ", "kd_rel_distmult-kinship-d10000-s5", "kd_distmult-umls-d289-s3"):
        assert name in plan


def test_the_pareto_tables_sweep_plans_the_19_table_sizes_over_5_seeds(tmp_path):
    """sweeps/pareto_tables.yaml: 3 models × 2 datasets × d = 4 … 400 (19 squares) × seeds 1–5, clean,
    no calibration; on an empty store every configuration's 5 seeds are one stacked job."""
    plan = dry_run("pareto_tables", tmp_path)
    assert "570 runs: 570 to train in 114 jobs (114 of them stacked, holding 570 runs)" in plan
    for name in ("distmult-umls-d4 ", "kd_rel_distmult-kinship-d400-s5", "kd_distmult-umls-d100-s3"):
        assert name in plan
    assert "d441" not in plan and "-d1 " not in plan  # the table sizes only: 2² … 20²
    assert "noise_ratio=0.0" in plan and "noise_ratio=0.1" not in plan
