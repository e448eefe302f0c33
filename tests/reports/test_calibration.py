"""The calibration report backfills runs logged without calibration metrics and tabulates them."""

import subprocess
import sys
from pathlib import Path

from kdkge.reports.calibration import main
from kdkge.tracking import find_runs

ROOT = Path(__file__).resolve().parents[2]


def test_report_backfills_and_tabulates(tmp_path):
    import os

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    for calibration in ("none", "lr_0.1"):
        out = subprocess.run([sys.executable, "train.py", "dataset=nations", "dim=16", "epochs=3", "threads=1",
                              "progress=false", f"calibration={calibration}"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    from kdkge.store import RunStore
    from kdkge.tracking import MlflowTracker

    runs = find_runs(uri, "kdkge-nations")
    old = runs.iloc[0]
    report = tmp_path / "calibration.md"
    assert main(["--tracking-uri", uri, "--experiments", "kdkge-nations", "--out", str(report)]) == 0
    text = report.read_text()
    assert "| nations | distmult | 16 | none |" in text and "| nations | distmult | 16 | LR α=0.1 |" in text
    from kdkge.reports.calibration import backfill

    # a backfill (what runs logged before the calibration metrics get) recomputes the logged values
    recomputed = backfill(RunStore(uri), MlflowTracker(uri, experiment=None), old["run_id"])
    assert abs(recomputed["test_ece"] - old["metrics.test_ece"]) < 1e-9
