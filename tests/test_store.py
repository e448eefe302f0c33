"""RunStore: the one reader of an MLflow store; Tracker: the whole interface on the base class."""

import pytest

from kdkge.store import RunStore
from kdkge.tracking import MlflowTracker, NullTracker, Tracker


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_missing_store_reads_as_empty_and_is_not_created(tmp_path, uri):
    store = RunStore(uri)
    assert not store.exists()
    assert store.experiment_names() == [] and store.experiment_id("kdkge-umls") is None
    assert store.finished_runs("kdkge-umls") == {} and store.frame("kdkge-umls").empty
    assert not (tmp_path / "mlflow.db").exists()


def test_finished_runs_sweep_runs_and_metrics(uri):
    tracker = MlflowTracker(uri, experiment="kdkge-nations")
    ids = {}
    for name, digest, status, sweep in (("a", "h1", "FINISHED", "s-1"), ("b", "h2", "FAILED", "s-1"),
                                        ("c", "h1", "FINISHED", "s-2"), ("d", "h3", "FINISHED", None)):
        tags = {"config_hash": digest, **({"sweep_id": sweep} if sweep else {})}
        ids[name] = tracker.start_run(name, tags=tags)
        tracker.log_metrics({"test_mrr": 0.5})
        tracker.end_run(status)
    store = RunStore(uri)
    assert "kdkge-nations" in store.experiment_names()
    assert store.finished_runs("kdkge-nations") == {"h1": ids["c"], "h3": ids["d"]}  # the newest FINISHED per hash
    assert store.finished_run("kdkge-nations", "h2") is None
    assert store.finished_run("kdkge-nations", "h1") in (ids["a"], ids["c"])
    assert {k: r.info.run_id for k, r in store.sweep_runs("kdkge-nations", "s-1").items()} == {"h1": ids["a"], "h2": ids["b"]}
    assert store.newest_run("kdkge-nations", "tags.config_hash = 'h3'").info.run_id == ids["d"]
    assert store.metrics(ids["a"]) == {"test_mrr": 0.5}
    assert len(store.runs("kdkge-nations")) == 4 and len(store.runs("kdkge-nations", max_results=2)) == 2
    assert set(store.frame("kdkge-nations")["run_id"]) == set(ids.values())
    # the tracker reads through the same store
    assert tracker.finished_run_with_hash("h3") == ids["d"] and tracker.finished_metrics(ids["d"]) == {"test_mrr": 0.5}
    tracker.set_run_tag(ids["d"], "optuna_state", "COMPLETE")
    assert store.run(ids["d"]).data.tags["optuna_state"] == "COMPLETE"
    assert tracker.recording and tracker.store_key == f"{tracker.tracking_uri}#kdkge-nations"


def test_the_base_tracker_answers_everything_a_launch_asks():
    for tracker in (Tracker(), NullTracker()):
        assert not tracker.recording and tracker.store_key == "untracked"
        assert tracker.finished_run_with_hash("h") is None and tracker.finished_metrics("r") == {}
        assert tracker.close_orphans("h") == []
        tracker.set_run_tag("r", "k", "v")  # records nothing
