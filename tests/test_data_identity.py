"""Nothing wrong: a custom dataset is identified by its data (SHA-256 of its split files), not by its name or path."""

from __future__ import annotations

import os
import shutil
import time

import pytest
from hydra import compose

from kdkge import app, fingerprint
from kdkge.config import CONF_DIR
from kdkge.data import DATA_ROOT
from kdkge.tracking import MlflowTracker, ensure_store, find_runs

ROOT = CONF_DIR.parent


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "CACHE_FILE", tmp_path / "digests.json")


def copy_of(name, folder):
    shutil.copytree(DATA_ROOT / name, folder)
    return folder


def other_data(folder, drop=1):
    """NATIONS with the first ``drop`` training triples left out: a different graph in a folder."""
    copy_of("nations", folder)
    lines = (folder / "train.txt").read_text().splitlines(keepends=True)
    (folder / "train.txt").write_text("".join(lines[drop:]))
    return folder


def cfg_of(*overrides):
    return compose("train", overrides=list(overrides))


def test_builtin_hashes_do_not_read_or_depend_on_a_path(hydra_conf):
    base = app.config_hash(cfg_of("dataset=nations"))
    assert app.config_hash(cfg_of("dataset=nations", f"dataset.path={DATA_ROOT / 'nations'}")) == base
    assert "fingerprint" not in app.semantic_config(cfg_of("dataset=nations"))["dataset"]


def test_a_folder_named_like_a_builtin_with_other_data_is_not_the_builtin(hydra_conf, tmp_path):
    builtin = app.config_hash(cfg_of("dataset=nations"))
    impostor = other_data(tmp_path / "nations")
    for overrides in (["dataset=custom", f"dataset.path={impostor}"], ["dataset=nations", f"dataset.path={impostor}"]):
        cfg = cfg_of(*overrides)
        assert app.dataset_name(cfg) == "nations"
        assert app.config_hash(cfg) != builtin, overrides
        assert app.semantic_config(cfg)["dataset"]["fingerprint"] == fingerprint.dataset_fingerprint(impostor)
    same_bytes = copy_of("nations", tmp_path / "copy" / "nations")
    assert app.config_hash(cfg_of("dataset=custom", f"dataset.path={same_bytes}")) == builtin  # the same data is the same run


def test_equal_folder_names_with_other_data_hash_differently(hydra_conf, tmp_path):
    a = copy_of("nations", tmp_path / "A" / "kg")
    b = other_data(tmp_path / "B" / "kg")
    c = copy_of("nations", tmp_path / "C" / "kg")
    hashes = [app.config_hash(cfg_of("dataset=custom", f"dataset.path={f}")) for f in (a, b, c)]
    assert hashes[0] != hashes[1] and hashes[0] == hashes[2]  # the data decides, not the path


def test_editing_a_file_in_place_changes_the_hash_at_once(hydra_conf, tmp_path):
    folder = copy_of("nations", tmp_path / "kg")
    cfg = cfg_of("dataset=custom", f"dataset.path={folder}")
    before = app.config_hash(cfg)
    text = (folder / "test.txt").read_text()
    edited = text.replace("usa", "uss", 1)  # same size; written within the same timestamp tick
    assert len(edited) == len(text) and edited != text
    (folder / "test.txt").write_text(edited)
    assert app.config_hash(cfg) != before
    (folder / "test.txt").write_text(text)
    assert app.config_hash(cfg) == before


def test_digests_are_cached_for_settled_files_only(tmp_path, monkeypatch):
    calls = []
    real = fingerprint.sha256_file
    monkeypatch.setattr(fingerprint, "sha256_file", lambda p: calls.append(p) or real(p))
    path = tmp_path / "train.txt"
    path.write_text("a\tr\tb\n")
    fingerprint.file_digest(path)
    fingerprint.file_digest(path)
    assert len(calls) == 2  # just written: not trusted yet (racy), hashed again
    old = time.time() - 60
    os.utime(path, (old, old))
    # ctime moved with utime: a file settles once its last change is RACY_SECONDS older than the hashing
    monkeypatch.setattr(fingerprint, "RACY_SECONDS", -1e9)
    fingerprint.file_digest(path)
    fingerprint.file_digest(path)
    assert len(calls) == 3  # cached
    path.write_text("a\tr\tc\n")
    assert fingerprint.file_digest(path) == fingerprint.sha256_file(path) and len(calls) == 5


def test_a_second_folder_with_the_same_name_is_trained_not_skipped(hydra_conf, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)
    tiny = ["epochs=1", "dim=4", "threads=1", "progress=false", "eval_every=0", "checkpoint=false", "checkpoint_every=0",
            "batch_size=2048", f"tracking.uri={uri}", "tracking.experiment=identity"]
    a = copy_of("nations", tmp_path / "A" / "kg")
    b = other_data(tmp_path / "B" / "kg")
    for folder in (a, b):
        app.train(cfg_of("dataset=custom", f"dataset.path={folder}", *tiny), tracker=MlflowTracker(uri, "identity"))
    assert "skip" not in capsys.readouterr().out
    runs = find_runs(uri, "identity", order_by=["attributes.start_time ASC"])
    assert list(runs["status"]) == ["FINISHED", "FINISHED"]
    assert list(runs["tags.dataset"]) == ["kg", "kg"]
    assert list(runs["tags.dataset_source"]) == [str(a), str(b)]
    assert list(runs["tags.dataset_fingerprint"]) == [fingerprint.dataset_fingerprint(f) for f in (a, b)]
    assert runs["tags.config_hash"].nunique() == 2
    app.train(cfg_of("dataset=custom", f"dataset.path={a}", *tiny), tracker=MlflowTracker(uri, "identity"))
    assert "skip distmult-kg-d4" in capsys.readouterr().out
    assert len(find_runs(uri, "identity")) == 2  # A again: already FINISHED, skipped
