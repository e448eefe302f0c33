"""kdkge.app.train and train.py end to end, into a temporary MLflow store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

import kdkge.app as app
from kdkge.config import CONF_DIR
from kdkge.experiment import load_checkpoint
from kdkge.run_inputs import split_digests
from kdkge.schema import GROUPED_METRICS, RANK_METRICS, RUN_TAGS, SPLITS
from kdkge.tracking import ensure_store, find_runs


ROOT = CONF_DIR.parent
TINY = ["epochs=2", "dim=4", "threads=1", "progress=false", "eval_every=1", "batch_size=2048"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (creating one costs seconds); tests use their own experiments."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    ensure_store(uri)
    return uri




def tiny_cfg(store, experiment, *overrides):
    return compose("train", overrides=[*TINY, f"tracking.uri={store}", f"tracking.experiment={experiment}", *overrides])


def runs_of(store, experiment):
    return find_runs(store, experiment, order_by=["attributes.start_time ASC"])


def run_env(store):
    env = dict(os.environ, MLFLOW_TRACKING_URI=store, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("HYDRA_FULL_ERROR", None)
    return env


# --------------------------------------------------------------------------- #
# in process
# --------------------------------------------------------------------------- #


def test_failed_and_interrupted_runs_are_recorded_and_the_next_run_works(hydra_conf, store, monkeypatch, capsys):
    cfg = tiny_cfg(store, "failures")
    real_run = app.run

    def crash(*args, **kwargs):
        def on_epoch(epoch, losses):
            kwargs["on_epoch"](epoch, losses)
            raise RuntimeError("injected failure at epoch 1")
        return real_run(*args, **{**kwargs, "on_epoch": on_epoch})

    monkeypatch.setattr(app, "run", crash)
    with pytest.raises(RuntimeError, match="injected failure"):
        app.train(cfg)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "run", interrupt)
    with pytest.raises(KeyboardInterrupt):
        app.train(cfg)

    monkeypatch.setattr(app, "run", real_run)
    metrics = app.train(cfg)
    assert 0 < metrics["test_mrr"] <= 1

    runs = runs_of(store, "failures")
    assert list(runs["status"]) == ["FAILED", "KILLED", "FINISHED"]
    failed, killed, finished = (runs.iloc[i] for i in range(3))
    assert "injected failure at epoch 1" in failed["tags.error"]
    assert "KeyboardInterrupt" in killed["tags.error"]
    client = MlflowClient(store)
    # the failed run kept the loss of the epoch it finished, its config and the traceback
    assert [m.step for m in client.get_metric_history(failed["run_id"], "loss")] == [1]
    artifacts = {a.path for a in client.list_artifacts(failed["run_id"])}
    assert {"config.yaml", "error.txt"} <= artifacts
    # the same config hash: a FINISHED run is skipped, force=true trains again
    assert failed["tags.config_hash"] == finished["tags.config_hash"] == app.config_hash(cfg)
    capsys.readouterr()
    again = app.train(cfg)
    assert "skip distmult-umls-d4" in capsys.readouterr().out
    assert again["test_mrr"] == pytest.approx(metrics["test_mrr"])
    assert len(runs_of(store, "failures")) == 3
    forced = app.train(tiny_cfg(store, "failures", "force=true", "checkpoint=false"))
    assert forced["test_mrr"] == pytest.approx(metrics["test_mrr"])  # same seed, same result
    assert list(runs_of(store, "failures")["status"]) == ["FAILED", "KILLED", "FINISHED", "FINISHED"]


def test_per_epoch_loss_is_batched(hydra_conf, store, monkeypatch):
    from kdkge.tracking import MlflowTracker

    calls = []
    original = MlflowTracker.log_metric_steps

    def spy(self, rows):
        rows = list(rows)
        calls.append([r[0] for r in rows])
        return original(self, rows)

    monkeypatch.setattr(MlflowTracker, "log_metric_steps", spy)
    app.train(tiny_cfg(store, "batched", "epochs=7", "eval_every=0", "tracking.log_every=3", "checkpoint=false"))
    assert calls == [[1, 2, 3], [4, 5, 6], [7]]
    [run_id] = runs_of(store, "batched")["run_id"]
    history = MlflowClient(store).get_metric_history(run_id, "loss")
    assert [m.step for m in history] == list(range(1, 8))


def test_tracking_none_records_nothing(hydra_conf, tmp_path, capsys):
    cfg = compose("train", overrides=[*TINY, "tracking=none", f"tracking.uri=sqlite:///{tmp_path / 'x.db'}"])
    metrics = app.train(cfg)
    assert 0 < metrics["valid_mrr"] <= 1 and metrics["num_parameters"] > 0
    assert not (tmp_path / "x.db").exists()
    assert "not recorded" in capsys.readouterr().out


# --------------------------------------------------------------------------- #
# train.py as a program
# --------------------------------------------------------------------------- #


def test_train_py_epochs_5_logs_everything(store, tmp_path):
    """The issue's acceptance case: ``python train.py epochs=5`` into a fresh experiment."""
    out = subprocess.run(
        [sys.executable, "train.py", "epochs=5", "progress=false", f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=ROOT, env=run_env(store), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    runs = find_runs(store, "kdkge-umls")
    assert len(runs) == 1
    run = runs.iloc[0]
    run_id = run["run_id"]
    assert run["status"] == "FINISHED"

    # printed: results table and where the run is
    for text in ("MRR", "Hits@1", "Hits@3", "Hits@10", "train ", "valid ", "test ", "parameters: 67,915", "test22 ",
                 run_id, f"tracking URI: {store}", f"/#/experiments/{run['experiment_id']}/runs/{run_id}"):
        assert text in out.stdout, text

    # params: the whole resolved config, flattened
    params = {c[len("params."):]: run[c] for c in runs.columns if c.startswith("params.")}
    for key, value in {"model.name": "distmult", "dim": "289", "dataset.name": "umls", "strategy.name": "1vsall",
                       "calibration.name": "none", "epochs": "5", "lr": "0.01", "batch_size": "1024", "seed": "1",
                       "noise_ratio": "0.0", "device": "auto", "tracking.log_every": "100"}.items():
        assert params[key] == value, key

    # tags: the schema's, package versions, commit, overrides, hash
    tags = {c[len("tags."):]: run[c] for c in runs.columns if c.startswith("tags.")}
    assert set(RUN_TAGS) <= set(tags)
    assert tags["model"] == "distmult" and tags["dataset"] == "umls" and tags["calibration"] == "none"
    assert tags["alpha"] == "" and tags["noise_ratio"] == "0.0" and tags["dim"] == "289"
    assert tags["stored_dim"] == "289" and tags["seed"] == "1" and tags["epochs"] == "5" and tags["strategy"] == "1vsall"
    assert tags["overrides"].startswith("epochs=5 progress=false")
    assert len(tags["config_hash"]) == 64 and tags["sweep_id"] == ""
    # the default protocol is the authors' code: their |Θ| (|E| + 1, |R| + 1) and their 2022 test split
    assert tags["protocol"] == "paper_code" and tags["loss"] == "softmax_ce"
    assert run["metrics.num_parameters"] == 67915
    assert 0 < run["metrics.paper_test_mrr"] <= 1 and 0 < run["metrics.test_mrr"] <= 1
    assert len(tags["git_commit"]) in (40, 7) or tags["git_commit"] == "unknown"
    assert tags["version.torch"] == torch.__version__
    assert {"version.mlflow", "version.hydra-core", "version.omegaconf", "version.python"} <= set(tags)

    # metrics: loss per epoch, rank metrics of every split, size and speed
    metrics = {c[len("metrics."):]: run[c] for c in runs.columns if c.startswith("metrics.")}
    for split in SPLITS:
        for name in RANK_METRICS:
            assert 0 <= metrics[f"{split}_{name}"] <= 1, (split, name)
    assert metrics["num_parameters"] == 67915  # paper_code: the paper's count
    assert metrics["wall_time_s"] > 0 and metrics["epochs_per_s"] > 0
    client = MlflowClient(store)
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3, 4, 5]
    assert [m.step for m in client.get_metric_history(run_id, "test_mrr")] == [5]
    # grouped copies of the headline metrics (the run page shows groups first), same values and steps
    for flat, grouped in GROUPED_METRICS.items():
        assert [(m.step, m.value) for m in client.get_metric_history(run_id, grouped)] == [
            (m.step, m.value) for m in client.get_metric_history(run_id, flat)], grouped
    # the dataset as an MLflow dataset input
    [data] = client.get_run(run_id).inputs.dataset_inputs
    assert data.dataset.name == "umls" and data.dataset.digest == split_digests(ROOT / "data" / "umls")["digest"]
    assert client.get_experiment(run["experiment_id"]).tags["mlflow.experimentKind"] == "custom_model_development"

    # artifacts: config, plot, checkpoint (which reloads to the same model)
    names = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for d in ("plots", "checkpoint") for a in client.list_artifacts(run_id, d)
    }
    assert {"config.yaml", "plots/learning_curve.png", "checkpoint/model.pt"} <= names
    local = client.download_artifacts(run_id, "checkpoint/model.pt", str(tmp_path))
    trained = load_checkpoint(local)
    assert trained.spec.dim == 289 and trained.spec.epochs == 5
    assert len(trained.predict(trained.entities[0], trained.relations[0], k=3)) == 3
    config_text = open(client.download_artifacts(run_id, "config.yaml", str(tmp_path))).read()
    assert "epochs: 5" in config_text and "name: distmult" in config_text
    png = open(client.download_artifacts(run_id, "plots/learning_curve.png", str(tmp_path)), "rb").read()
    assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "args,status,message",
    [
        (["model=kd_distmult", "dim=288"], 2, "error: KD-DistMult embedding size d=288 is not a perfect square"),
        (["dim=range"], 2, "error: dim=range is a sweep: add -m"),
        (["epoch=5"], 1, "Could not override 'epoch'"),
    ],
)
def test_train_py_bad_input_fails_without_traceback(store, tmp_path, args, status, message):
    out = subprocess.run(
        [sys.executable, "train.py", *args, "tracking.experiment=bad-input", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, env=run_env(store), capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == status
    assert message in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    if status == 2:
        assert out.stderr.strip().count("\n") == 0  # one line
    assert len(find_runs(store, "bad-input")) == 0  # nothing was started


def test_main_turns_user_errors_into_exit_2_and_ctrl_c_into_130(hydra_conf, monkeypatch, capsys):
    cfg = compose("train", overrides=[*TINY, "tracking=none"])

    def fail(cfg):
        raise app.ConfigError("calibration.alpha=3 is wrong")

    monkeypatch.setattr(app, "train", fail)
    with pytest.raises(SystemExit) as info:
        app.main(cfg)
    assert info.value.code == 2
    assert capsys.readouterr().err == "error: calibration.alpha=3 is wrong\n"

    def interrupt(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "train", interrupt)
    with pytest.raises(SystemExit) as info:
        app.main(cfg)
    assert info.value.code == 130

    monkeypatch.setattr(app, "train", lambda cfg: {"test_mrr": 0.5, "valid_mrr": 0.4})
    assert app.main(cfg) == 0.5  # the value a Hydra sweeper sees


def test_calibration_metrics_and_reliability_diagrams_are_logged(tmp_path):
    """Every run records ECE, Brier and top-1 ECE on valid and test, and a reliability diagram per split."""
    import subprocess
    import sys
    from pathlib import Path

    from kdkge.tracking import find_runs

    root = Path(__file__).resolve().parent.parent
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = subprocess.run(
        [sys.executable, "train.py", "dataset=nations", "dim=16", "epochs=3", "threads=1", "progress=false", "checkpoint=false"],
        cwd=root, env={**__import__("os").environ, "MLFLOW_TRACKING_URI": uri}, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    run = find_runs(uri, "kdkge-nations").iloc[0]
    for split in ("valid", "test"):
        for key in ("ece", "brier", "top1_ece"):
            value = run[f"metrics.{split}_{key}"]
            assert 0.0 <= value <= 1.0
    from mlflow.tracking import MlflowClient

    files = {f.path for f in MlflowClient(uri).list_artifacts(run.run_id, "plots")}
    assert {"plots/reliability_valid.png", "plots/reliability_test.png", "plots/learning_curve.png"} <= files


def test_model_selection_and_early_stopping_are_logged(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from kdkge.tracking import find_runs

    root = Path(__file__).resolve().parent.parent
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    common = ["train.py", "dataset=nations", "dim=16", "threads=1", "progress=false", "eval_every=5", "batch_size=256"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    out = subprocess.run([sys.executable, *common, "epochs=20"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, *common, "epochs=400", "patience=2"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    runs = find_runs(uri, "kdkge-nations").set_index("tags.epochs")
    plain, stopped = runs.loc["20"], runs.loc["400"]
    assert plain["metrics.best_valid_mrr"] >= plain["metrics.valid_mrr"] and plain["metrics.best_epoch"] % 5 == 0
    assert plain["metrics.last_epoch"] == 20
    assert stopped["metrics.last_epoch"] < 400
    assert plain["tags.config_hash"] != stopped["tags.config_hash"]
    files = {f.path for f in MlflowClient(uri).list_artifacts(plain.run_id, "checkpoint")}
    assert files == {"checkpoint/model.pt", "checkpoint/best_model.pt"}
