"""Multi-seed aggregation and paired comparisons on a synthetic store; the seed sweep's size."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from kdkge.reports.seeds import main, paired, runs_frame, summarise
from kdkge.reports.stats import bootstrap_ci, compare_paired, paired_t_p, sign_test_floor, sign_test_p
from kdkge.tracking import MlflowTracker

ROOT = Path(__file__).resolve().parents[2]


def test_sign_test_and_bootstrap():
    assert sign_test_p(5, 0) == pytest.approx(2 / 32)
    assert sign_test_p(3, 2) == 1.0
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(9, 1) == pytest.approx(2 * (1 + 10) / 1024)
    low, high = bootstrap_ci([0.5, 0.5, 0.5])
    assert low == high == 0.5
    low, high = bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5])
    assert 0.1 < low < 0.3 < high < 0.5
    assert all(math.isnan(x) for x in bootstrap_ci([0.3]))
    assert bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5]) == bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5])  # fixed seed


def test_statistics_are_scipys():
    import numpy as np
    from scipy import stats

    assert sign_test_p(4, 1) == pytest.approx(stats.binomtest(4, 5).pvalue) == pytest.approx(6 / 16)
    assert sign_test_floor(5) == 0.0625 and sign_test_floor(6) == 0.03125 and sign_test_floor(0) == 1.0
    assert sign_test_p(5, 0) == sign_test_floor(5)  # five wins of five: the floor, not below 5 %
    a, b = [0.50, 0.52, 0.48, 0.51, 0.49], [0.45, 0.49, 0.47, 0.44, 0.46]
    assert paired_t_p(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert math.isnan(paired_t_p([0.5, 0.6], [0.4, 0.5]))  # constant differences: undefined
    low, high = bootstrap_ci(a)
    ref = stats.bootstrap((np.array(a),), np.mean, n_resamples=10_000, method="percentile",
                          rng=np.random.default_rng(0)).confidence_interval
    assert (low, high) == pytest.approx((ref.low, ref.high))
    import pandas as pd

    stats_ = compare_paired(pd.Series(a, index=range(1, 6)), pd.Series(b, index=range(1, 6)))
    assert (stats_["wins"], stats_["losses"], stats_["sign_floor"]) == (5, 0, 0.0625)
    assert stats_["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)


def log(tracker, model, seed, mrr):
    tags = {"dataset": "umls", "model": model, "dim": "289", "calibration": "none", "alpha": "",
            "noise_ratio": "0.0", "epochs": "1000", "strategy": "1vsall", "seed": str(seed)}
    with tracker.run(f"{model}-s{seed}", tags=tags, params={}):
        tracker.log_metrics({"test_mrr": mrr, "test_hits_1": mrr - 0.1, "test_hits_3": mrr, "test_hits_10": mrr + 0.1})


def test_summary_and_paired_comparison(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MlflowTracker(uri, experiment="kdkge-umls")
    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    for seed, mrr in enumerate(base, start=1):
        log(tracker, "distmult", seed, mrr)
        log(tracker, "kd_distmult", seed, mrr + 0.05)
    log(tracker, "kd_distmult", 1, 0.90)  # newer duplicate of (kd_distmult, seed 1) wins
    df = runs_frame(uri, ["kdkge-umls"])
    assert len(df) == 10
    summary = summarise(df).set_index("model")
    assert summary.loc["distmult", "n"] == 5
    assert summary.loc["distmult", "test_mrr_mean"] == pytest.approx(sum(base) / 5)
    assert summary.loc["distmult", "test_mrr_std"] == pytest.approx(0.0158113883, rel=1e-6)
    pairs = paired(df).set_index("comparison").loc["kd_distmult − distmult"]
    assert pairs["n"] == 5 and pairs["wins"] == 5 and pairs["sign_p"] == pytest.approx(1 / 16)
    assert pairs["mean_diff"] == pytest.approx((0.90 - 0.50 + 4 * 0.05) / 5)
    out = tmp_path / "seeds.md"
    assert main(["--tracking-uri", uri, "--experiments", "kdkge-umls", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| paper_text | bce | umls | distmult | 289 | none | 0.0 | 5 | .500 ± .016 |" in text
    assert "kd_distmult − distmult" in text and "| 5/0 | 0.0625 (0.0625) |" in text
    assert "cannot go below 2·0.5ⁿ (n = 5: 0.0625)" in text


def test_table2_seeds_sweep_has_30_runs_in_6_stacked_jobs(tmp_path):
    import os

    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    out = subprocess.run([sys.executable, "train.py", "-m", "+sweep=table2_seeds", "hydra.sweeper.dry_run=true"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "30 runs: 30 to train in 6 jobs (6 of them stacked, holding 30 runs)" in out.stdout


def test_scaled_distmult_variants_are_cells_of_their_own(tmp_path):
    """Runs of scaled_distmult's variants share model, size and seed; they must never count as seeds of one
    cell (the newest variant would hide the others), here and in results/calibration.md (same helper)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MlflowTracker(uri, experiment="kdkge-umls")
    tags = {"dataset": "umls", "model": "scaled_distmult", "dim": "256", "calibration": "none", "alpha": "",
            "noise_ratio": "0.0", "epochs": "1000", "strategy": "1vsall"}
    for variant, mrr in (("dot", 0.30), ("abs", 0.80)):
        for seed in (1, 2):
            with tracker.run(f"scaled-{variant}-s{seed}", tags=tags | {"seed": str(seed)},
                             params={"model": {"name": "scaled_distmult", "options": {"variant": variant}}}):
                tracker.log_metrics({"test_mrr": mrr + seed / 100, "test_hits_1": mrr, "test_hits_3": mrr, "test_hits_10": mrr})
    summary = summarise(runs_frame(uri, ["kdkge-umls"])).set_index("model")
    assert sorted(summary.index) == ["scaled_distmult (abs)", "scaled_distmult (dot)"]
    assert summary.loc["scaled_distmult (dot)", "n"] == 2
    assert summary.loc["scaled_distmult (dot)", "test_mrr_mean"] == pytest.approx(0.315)
    assert summary.loc["scaled_distmult (abs)", "test_mrr_mean"] == pytest.approx(0.815)
