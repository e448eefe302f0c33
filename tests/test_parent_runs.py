"""Parent MLflow runs: one per sweep (``train.py -m``), one per Optuna study (kdkge.parent_runs)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest
from hydra import compose
from mlflow.tracking import MlflowClient

import kdkge.app as app
from kdkge.config import CONF_DIR
from kdkge.parent_runs import swept_params, table, varying_keys
from kdkge.tracking import find_runs

ROOT = CONF_DIR.parent
TINY = ["dataset=nations", "threads=1", "progress=false", "checkpoint=false", "epochs=1", "eval_every=0"]


def sweep(store: str, sweep_dir, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", MLFLOW_TRACKING_URI=store)
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "train.py", "-m", *TINY, *args, f"hydra.sweep.dir={sweep_dir}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_internal_keys_leave_the_config_hash_alone(hydra_conf):
    plain = compose("train", overrides=TINY)
    tagged = compose("train", overrides=[*TINY, "parent_run=0123abcd", "sweep_id=x", "resume_run=feed"])
    assert app.config_hash(tagged) == app.config_hash(plain)
    spec, stored = app.validate(tagged)
    assert app.run_tags(tagged, spec, stored, "h", "")["mlflow.parentRunId"] == "0123abcd"
    assert "mlflow.parentRunId" not in app.run_tags(plain, spec, stored, "h", "")


def test_tables_of_children():
    jobs = [["dim=4", "calibration=none", "sweep_id=s"], ["dim=9", "calibration=none", "sweep_id=s"], ["dim=9", "+x=1"]]
    assert swept_params(jobs, skip=("sweep_id",)) == {"dim": "4,9", "calibration": "none", "x": "1"}
    assert varying_keys(jobs, skip=("sweep_id",)) == ["dim", "calibration", "x"]
    csv_text, md = table([{"#": 0, "run": "a", "status": "finished", "test_mrr": 0.5, "unused": None}],
                         ["#", "run", "status", "test_mrr", "unused"])
    assert csv_text.splitlines()[0] == "#,run,status,test_mrr" and "0.5000" in md and "unused" not in md


@pytest.mark.slow
def test_a_sweep_gets_one_parent_run_with_its_children(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = sweep(store, tmp_path / "first", "dim=4,9")
    assert out.returncode == 0, out.stderr[-3000:]
    runs = find_runs(store, "kdkge-nations")
    parents = runs[runs["tags.kind"] == "sweep"]
    children = runs[runs["tags.kind"] != "sweep"]
    assert len(parents) == 1 and len(children) == 2
    parent = parents.iloc[0]
    assert parent["status"] == "FINISHED" and parent["tags.sweep_id"] == children["tags.sweep_id"].iloc[0]
    assert parent["tags.mlflow.runName"] == parent["tags.sweep_id"]
    assert parent["params.dim"] == "4,9" and "dim=4,9" in parent["tags.overrides"]
    assert parent["tags.counts"] == "2 finished, 0 skipped, 0 failed"
    assert set(children["tags.mlflow.parentRunId"]) == {parent["run_id"]}
    assert set(children["status"]) == {"FINISHED"}
    assert "tags.config_hash" not in parents.columns or parents["tags.config_hash"].isna().all()
    client = MlflowClient(store)
    assert {a.path for a in client.list_artifacts(parent["run_id"])} == {
        "children.csv", "children.md", "plan.json", "sweep_summary.json"}
    rows = list(csv.DictReader(io.StringIO(open(client.download_artifacts(parent["run_id"], "children.csv", str(tmp_path))).read())))
    assert [r["dim"] for r in rows] == ["4", "9"] and {r["status"] for r in rows} == {"finished"}
    assert {r["run_id"] for r in rows} == set(children["run_id"])
    for r in rows:  # the table holds the children's own metrics
        child = children.set_index("run_id").loc[r["run_id"]]
        assert float(r["test_mrr"]) == child["metrics.test_mrr"] and float(r["valid_mrr"]) == child["metrics.valid_mrr"]
    assert f"parent run {parent['run_id']}" in out.stdout and "| dim |" in out.stdout.replace("  ", " ")

    # relaunching the same sweep (nothing left to train) reopens the same parent, not a second one
    again = sweep(store, tmp_path / "second", "dim=4,9")
    assert again.returncode == 0, again.stderr[-3000:]
    runs = find_runs(store, "kdkge-nations")
    assert list(runs.loc[runs["tags.kind"] == "sweep", "run_id"]) == [parent["run_id"]]
    assert len(runs) == 3 and "(reopened)" in again.stdout
    assert runs.set_index("run_id").loc[parent["run_id"], "tags.counts"] == "0 finished, 2 skipped, 0 failed"


@pytest.mark.slow
def test_a_multi_dataset_sweep_gets_one_parent_per_experiment(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = sweep(store, tmp_path / "m", "dim=4", "dataset=nations,kinship")
    assert out.returncode == 0, out.stderr[-3000:]
    parents = {}
    for experiment in ("kdkge-nations", "kdkge-kinship"):
        runs = find_runs(store, experiment)
        [parent] = runs.loc[runs["tags.kind"] == "sweep", "run_id"]
        [child] = runs.loc[runs["tags.kind"] != "sweep", "tags.mlflow.parentRunId"]
        assert child == parent
        parents[experiment] = runs.loc[runs["run_id"] == parent].iloc[0]
    assert parents["kdkge-nations"]["tags.sweep_id"] == parents["kdkge-kinship"]["tags.sweep_id"]
    assert parents["kdkge-nations"]["run_id"] != parents["kdkge-kinship"]["run_id"]
