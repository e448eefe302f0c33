"""kdkge.tracking against a temporary SQLite MLflow store."""

from __future__ import annotations

import http.server
import multiprocessing
import socket
import sqlite3
import threading
import time

import pytest

from kdkge import tracking
from kdkge.tracking import (
    REPO_ROOT,
    MlflowTracker,
    NullTracker,
    TrackingUnreachableError,
    check_reachable,
    config_hash,
    default_tracking_uri,
    ensure_store,
    find_runs,
    flatten_params,
    resolve_tracking_uri,
)


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


# --------------------------------------------------------------------------- #
# pure helpers
# --------------------------------------------------------------------------- #


def test_default_uri_is_absolute_repo_db(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert default_tracking_uri() == f"sqlite:///{REPO_ROOT / 'mlflow.db'}"
    assert default_tracking_uri().startswith("sqlite:////")
    assert (REPO_ROOT / "pyproject.toml").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert default_tracking_uri() == "http://127.0.0.1:1"


def test_relative_sqlite_uri_resolved_against_launch_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_tracking_uri("sqlite:///sub/m.db") == f"sqlite:///{tmp_path / 'sub' / 'm.db'}"
    assert resolve_tracking_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert resolve_tracking_uri("http://h:5000") == "http://h:5000"


def test_flatten_params_nested_and_truncated():
    flat = flatten_params({"model": {"name": "kd", "dims": [4, 8]}, "lr": 0.01, "x": None,
                           "flag": True, "long": "y" * 10_000})
    assert flat["model.name"] == "kd"
    assert flat["model.dims"] == "[4, 8]"
    assert flat["lr"] == "0.01"
    assert flat["x"] == "None"
    assert flat["flag"] == "True"
    assert len(flat["long"]) == 6000 and flat["long"].endswith("...")


def test_flatten_params_accepts_omegaconf():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"a": {"b": 1, "c": "${a.b}"}})
    assert flatten_params(cfg) == {"a.b": "1", "a.c": "1"}


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2, "d": 3}}) == config_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_null_tracker_does_nothing():
    t = NullTracker()
    with t.run("r", tags={"a": 1}, params={"p": {"q": 1}}) as run_id:
        assert isinstance(run_id, str) and run_id
        t.log_metrics({"m": 1.0}, step=3)
        t.log_params({"x": 1})
        t.log_artifact("/nonexistent")
        t.log_dict({"a": 1}, "a.json")
        t.log_figure(object(), "f.png")
    assert t.finished_run_with_hash("abc") is None
    with pytest.raises(ValueError):
        t.end_run("DONE")


def test_retry_locked_retries_then_succeeds():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert tracking._retry_locked(flaky) == "ok"
    assert len(calls) == 3

    def broken():
        raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):
        tracking._retry_locked(broken)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_reachable_fails_fast_with_one_line_message():
    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    with pytest.raises(TrackingUnreachableError) as info:
        check_reachable(uri, timeout=2)
    assert time.monotonic() - start < 3
    msg = str(info.value)
    assert msg.startswith(f"MLflow tracking server {uri} is unreachable: ")
    assert msg.endswith("set tracking.uri or MLFLOW_TRACKING_URI")
    assert "\n" not in msg
    with pytest.raises(TrackingUnreachableError):
        MlflowTracker(uri, "x")


def test_check_reachable_accepts_any_http_answer():
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # answers 501
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_reachable(f"http://127.0.0.1:{server.server_address[1]}", timeout=2)
    finally:
        server.shutdown()
        server.server_close()
    check_reachable("sqlite:////does/not/matter.db")  # not checked


# --------------------------------------------------------------------------- #
# against a SQLite store
# --------------------------------------------------------------------------- #


def test_ensure_store_creates_wal_database_once(tmp_path):
    db = tmp_path / "deep" / "dir" / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert ensure_store(uri) == uri
    assert ensure_store(uri) == uri  # idempotent
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in conn.execute("SELECT name FROM experiments")}
    assert "Default" in names


def test_failed_run_then_finished_run_in_same_process(uri, tmp_path):
    tracker = MlflowTracker(uri, experiment="unit")
    params = {"model": {"name": "kd_distmult", "dim": 32}, "train": {"lr": 0.01}}
    run1 = tracker.start_run("run-one", tags={"config_hash": "h1", "dataset": "umls"}, params=params)
    tracker.log_metrics({"loss": 1.0}, step=0)
    tracker.log_metrics({"loss": 0.5}, step=1)
    artifact = tmp_path / "note.txt"
    artifact.write_text("hello")
    tracker.log_artifact(artifact, artifact_path="notes")
    tracker.log_dict({"k": 1}, "config.json")
    tracker.end_run("FAILED", error="RuntimeError: diverged")
    assert tracker.run_id is None
    assert tracker.finished_run_with_hash("h1") is None

    run2 = tracker.start_run("run-two", tags={"config_hash": "h2"}, params=params)
    tracker.log_metrics({"test_mrr": 0.42})
    tracker.end_run()

    df = find_runs(uri, "unit").set_index("run_id")
    assert df.loc[run1, "status"] == "FAILED"
    assert df.loc[run1, "tags.error"] == "RuntimeError: diverged"
    assert df.loc[run1, "params.model.name"] == "kd_distmult"
    assert df.loc[run1, "params.train.lr"] == "0.01"
    assert df.loc[run1, "metrics.loss"] == 0.5  # the latest value
    assert df.loc[run1, "tags.mlflow.runName"] == "run-one"
    assert df.loc[run2, "status"] == "FINISHED"
    assert df.loc[run2, "metrics.test_mrr"] == pytest.approx(0.42)
    history = [m.value for m in tracker.client.get_metric_history(run1, "loss")]
    assert history == [1.0, 0.5]
    artifacts = {a.path for a in tracker.client.list_artifacts(run1)}
    assert {"notes", "config.json"} <= artifacts
    # artifacts live next to the database, not under the working directory
    assert tracker.client.get_run(run1).info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())

    assert tracker.finished_run_with_hash("h2") == run2
    finished = find_runs(uri, "unit", "attributes.status = 'FINISHED'")
    assert list(finished["run_id"]) == [run2]


def test_run_context_manager_records_failure_and_interrupt(uri):
    tracker = MlflowTracker(uri, experiment="ctx")
    with pytest.raises(ValueError):
        with tracker.run("bad", tags={"config_hash": "c"}):
            raise ValueError("nan loss")
    with pytest.raises(KeyboardInterrupt):
        with tracker.run("stopped"):
            raise KeyboardInterrupt
    with tracker.run("good") as run_id:
        tracker.log_metrics({"m": 1})
    df = find_runs(uri, "ctx").set_index("tags.mlflow.runName")
    assert df.loc["bad", "status"] == "FAILED"
    assert df.loc["bad", "tags.error"] == "ValueError: nan loss"
    assert df.loc["stopped", "status"] == "KILLED"
    assert df.loc["good", "status"] == "FINISHED"
    assert df.loc["good", "run_id"] == run_id


def test_start_twice_and_log_without_run_are_errors(uri):
    tracker = MlflowTracker(uri, experiment="errs")
    with pytest.raises(RuntimeError, match="no active run"):
        tracker.log_metrics({"m": 1})
    tracker.start_run("a")
    with pytest.raises(RuntimeError, match="still active"):
        tracker.start_run("b")
    with pytest.raises(ValueError):
        tracker.end_run("OK")
    tracker.end_run("KILLED")


def test_find_runs_leaves_global_state_and_missing_stores_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    missing = tmp_path / "none.db"
    assert find_runs(f"sqlite:///{missing}", "x").empty
    assert not missing.exists()
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    ensure_store(uri)
    assert find_runs(uri, "no-such-experiment").empty
    import os

    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:1"


def _worker(uri: str, i: int) -> str:
    tracker = MlflowTracker(uri, experiment="parallel")
    run_id = tracker.start_run(f"worker-{i}", tags={"config_hash": f"w{i}"},
                               params={"worker": i, "nested": {"a": list(range(5))}})
    for step in range(20):
        tracker.log_metrics({"loss": 1.0 / (step + 1), "worker": float(i)}, step=step)
    tracker.end_run()
    return run_id


def test_parallel_workers_all_log_their_run(uri):
    ensure_store(uri)
    ctx = multiprocessing.get_context("spawn")  # like joblib/loky workers: a fresh interpreter each
    with ctx.Pool(4) as pool:
        run_ids = pool.starmap(_worker, [(uri, i) for i in range(4)])
    assert len(set(run_ids)) == 4
    df = find_runs(uri, "parallel")
    assert len(df) == 4
    assert set(df["status"]) == {"FINISHED"}
    assert sorted(df["params.worker"]) == ["0", "1", "2", "3"]
    assert set(df["run_id"]) == set(run_ids)


# --------------------------------------------------------------------------- #
# experiment kind, dataset inputs (issue 16)
# --------------------------------------------------------------------------- #


def test_experiments_are_marked_for_the_classic_view(uri):
    from mlflow.tracking import MlflowClient

    from kdkge.tracking import EXPERIMENT_TAGS

    assert EXPERIMENT_TAGS == {"mlflow.experimentKind": "custom_model_development"}
    tracker = MlflowTracker(uri, experiment="new-one")
    client = MlflowClient(uri)
    assert client.get_experiment(tracker.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    # an experiment created before (without the tag, or with another kind) gets it when opened
    old = client.create_experiment("old-one")
    client.set_experiment_tag(old, "mlflow.experimentKind", "genai_development")
    assert MlflowTracker(uri, experiment="old-one").experiment_id == old
    assert client.get_experiment(old).tags["mlflow.experimentKind"] == "custom_model_development"


def test_dataset_input_is_logged_with_a_digest_of_the_split_files(uri, tmp_path):
    from kdkge.run_inputs import log_dataset, split_digests

    folder = tmp_path / "kg"
    folder.mkdir()
    for split in ("train", "valid", "test"):
        (folder / f"{split}.txt").write_text(f"a\tr\t{split}\n")
    first = split_digests(folder)
    assert len(first["digest"]) == 32 and first["splits"]["train"]["lines"] == 1
    tracker = MlflowTracker(uri, experiment="inputs")
    with tracker.run("with-data") as run_id:
        log_dataset(tracker, "kg", folder, protocol="paper_text", noise_ratio=0.0, seed=1)
    [inp] = tracker.client.get_run(run_id).inputs.dataset_inputs
    assert inp.dataset.name == "kg" and inp.dataset.digest == first["digest"]
    assert str(folder.resolve()) in inp.dataset.source
    assert {(t.key, t.value) for t in inp.tags} == {("mlflow.data.context", "training")}
    assert '"protocol": "paper_text"' in inp.dataset.profile
    time.sleep(0.01)
    (folder / "test.txt").write_text("a\tr\tother\n")  # other bytes, other digest
    assert split_digests(folder)["digest"] != first["digest"]
    NullTracker().log_dataset("kg", "d", "s")  # a no-op
