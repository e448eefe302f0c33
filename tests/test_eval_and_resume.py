"""``python eval.py`` (a run's checkpoint evaluated again) and ``python train.py resume_run=<id>``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra import compose
from mlflow.tracking import MlflowClient

import kdkge.app as app
from kdkge import eval_app
from kdkge.config import CONF_DIR
from kdkge.experiment import load_checkpoint
from kdkge.recorded import RecordedRunError, resumed_config
from kdkge.tracking import ensure_store, find_runs

ROOT = CONF_DIR.parent
TINY = ["dataset=nations", "dim=16", "epochs=4", "eval_every=2", "threads=1", "progress=false", "batch_size=512",
        "checkpoint_every=1"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    ensure_store(uri)
    return uri


def env_for(store):
    env = dict(os.environ, MLFLOW_TRACKING_URI=store, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def finished_run(store, experiment):
    runs = find_runs(store, experiment)
    return runs[runs["status"] == "FINISHED"].iloc[0]


# --------------------------------------------------------------------------- #
# eval.py
# --------------------------------------------------------------------------- #


def test_eval_py_reproduces_the_logged_test_mrr_and_logs_it(hydra_conf, store, tmp_path):
    app.train(compose("train", overrides=[*TINY, f"tracking.uri={store}", "tracking.experiment=eval"]))
    run = finished_run(store, "eval")
    out = subprocess.run([sys.executable, "eval.py", f"run_id={run.run_id}", "threads=1", "log=true",
                          f"hydra.run.dir={tmp_path / 'out'}"],
                         cwd=ROOT, env=env_for(store), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    for text in ("realistic", "optimistic", "pessimistic", "test22", "ECE", "Brier", "top-1 ECE",
                 "against the run's logged final-epoch metrics", ", equal (test MRR logged"):
        assert text in out.stdout, text
    logged = MlflowClient(store).get_run(run.run_id).data.metrics
    # the done-when of the issue: the recomputed test MRR is the logged one, exactly
    assert logged["eval/test_mrr"] == logged["test_mrr"] == run["metrics.test_mrr"]
    for key in ("valid_mrr", "test_hits_10", "test_optimistic_mrr", "test_pessimistic_hits_1", "paper_test_mrr",
                "test_ece", "valid_brier", "test_top1_ece"):
        assert logged[f"eval/{key}"] == pytest.approx(logged[key], rel=1e-12, abs=1e-15), key
    assert "eval/train_mrr" not in logged  # splits=[valid,test] by default


def test_eval_of_a_checkpoint_file_and_of_the_best_model(hydra_conf, store, tmp_path):
    run = finished_run(store, "eval")
    client = MlflowClient(store)
    path = client.download_artifacts(run.run_id, "checkpoint/best_model.pt", str(tmp_path))
    cfg = compose("eval", overrides=[f"ckpt_path={path}", "splits=[train,test]", "calibrate=false"])
    metrics = eval_app.evaluate_trained(load_checkpoint(path), list(cfg.splits), calibration=False)
    logged = client.get_run(run.run_id).data.metrics
    assert metrics["train_mrr"] == logged["best_train_mrr"] and metrics["test_mrr"] == logged["best_test_mrr"]
    assert "valid_mrr" not in metrics and "test_ece" not in metrics
    text = eval_app.report(metrics, ["train", "test"])
    assert "train  pessimistic" in text and "test22" in text


@pytest.mark.parametrize("args,message", [
    ([], "say what to evaluate: run_id=<MLflow run id> or ckpt_path=<checkpoint file>"),
    (["run_id=0123456789abcdef0123456789abcdef"], "MLflow run '0123456789abcdef0123456789abcdef' not found"),
    (["ckpt_path=/no/such.pt"], "ckpt_path=/no/such.pt: no such file"),
    (["ckpt_path=/no/such.pt", "splits=[dev]"], "splits=['dev']: choose among train, valid, test"),
])
def test_eval_py_bad_input_is_one_line(store, tmp_path, args, message):
    out = subprocess.run([sys.executable, "eval.py", *args, f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env_for(store),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith(f"error: {message}") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr


# --------------------------------------------------------------------------- #
# train.py resume_run=<id>
# --------------------------------------------------------------------------- #


def test_resume_run_continues_a_killed_run_to_the_uninterrupted_result(hydra_conf, store, monkeypatch, capsys):
    cfg = compose("train", overrides=[*TINY, f"tracking.uri={store}", "tracking.experiment=resume"])
    real_run = app.run

    def killed_at_epoch_3(*args, **kwargs):
        def on_epoch(epoch, losses):
            kwargs["on_epoch"](epoch, losses)
            if epoch == 3:
                raise KeyboardInterrupt
        return real_run(*args, **{**kwargs, "on_epoch": on_epoch})

    monkeypatch.setattr(app, "run", killed_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        app.train(cfg)
    monkeypatch.setattr(app, "run", real_run)
    [killed] = find_runs(store, "resume")["run_id"]

    # only the run id (and the store) on the command line: everything else comes from the run's config.yaml
    resume = compose("train", overrides=[f"tracking.uri={store}", f"resume_run={killed}"])
    assert app.main(resume) is not None
    runs = find_runs(store, "resume").set_index("run_id")
    [new] = [r for r in runs.index if r != killed]
    assert runs.loc[killed, "status"] == "KILLED" and runs.loc[new, "status"] == "FINISHED"
    assert runs.loc[new, "tags.resume_of"] == killed and runs.loc[new, "tags.resumed_from_epoch"] == "2"
    assert runs.loc[new, "tags.config_hash"] == runs.loc[killed, "tags.config_hash"] == app.config_hash(cfg)
    assert runs.loc[new, "params.resume_run"] == killed and runs.loc[new, "params.epochs"] == "4"
    # the same final metrics as an uninterrupted run
    fresh = app.train(compose("train", overrides=[*TINY, "tracking=none", "resume=false"]))
    assert runs.loc[new, "metrics.test_mrr"] == pytest.approx(fresh["test_mrr"], rel=1e-9)
    assert runs.loc[new, "metrics.valid_mrr"] == pytest.approx(fresh["valid_mrr"], rel=1e-9)

    # a FINISHED run is skipped; key=value overrides apply on top; group choices are refused
    capsys.readouterr()
    app.main(compose("train", overrides=[f"tracking.uri={store}", f"resume_run={new}"]))
    assert "skip distmult-nations-d16" in capsys.readouterr().out
    again, tags = resumed_config(compose("train", overrides=[f"tracking.uri={store}", f"resume_run={new}"]),
                                 overrides=[f"resume_run={new}", "force=true", "device=cpu", "threads=2"])
    assert again.force and again.device == "cpu" and again.threads == 2 and tags["resume_of"] == new
    assert app.config_hash(again) == app.config_hash(cfg)
    with pytest.raises(app.ConfigError, match="key=value overrides only, not the config group choice model=kd_distmult"):
        resumed_config(resume, overrides=["model=kd_distmult"])
    with pytest.raises(RecordedRunError, match="not found"):
        resumed_config(compose("train", overrides=[f"tracking.uri={store}", "resume_run=feedfeedfeedfeedfeedfeedfeedfeed"]))


def test_resume_run_refuses_a_config_that_no_longer_hashes_the_same(hydra_conf, store, monkeypatch):
    cfg = compose("train", overrides=[*TINY, "epochs=1", f"tracking.uri={store}", "tracking.experiment=drift"])
    app.train(cfg)
    run = finished_run(store, "drift")
    MlflowClient(store).set_tag(run.run_id, "config_hash", "0" * 64)  # as if the code's config had changed since
    with pytest.raises(app.ConfigError, match="the config changed since"):
        resumed_config(compose("train", overrides=[f"tracking.uri={store}", f"resume_run={run.run_id}"]))
