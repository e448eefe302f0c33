"""The run record (kdkge.runrecord): export, merge, import, and the tables from it, on synthetic stores."""

from __future__ import annotations

import gzip
import json

import pytest

from fake_runs import log_run
from kdkge import runrecord as R
from kdkge import tables as T
from kdkge.tracking import find_runs

LOSSES = [1.2345678912, 0.5, 0.25, 0.123456789]


def _fill(uri: str) -> None:
    """Untagged (paper_text) runs and paper_code runs with the 2022 split, a FAILED run, a loss history."""
    log_run(uri, "umls", "distmult", 289, 0.517, losses=LOSSES)
    log_run(uri, "umls", "kd_distmult", 256, 0.541)
    log_run(uri, "kinship", "distmult", 289, 0.568)
    log_run(uri, "kinship", "distmult", 289, 0.99, status="FAILED")
    for seed in (1, 2):
        log_run(uri, "umls", "distmult", 289, 0.6 + seed / 100, seed=seed, protocol="paper_code",
                paper_test_mrr=0.7 + seed / 100, best=(200, 0.8, 0.61, 0.71), losses=LOSSES[:2])
        log_run(uri, "umls", "kd_distmult", 256, 0.3 + seed / 100, seed=seed, protocol="paper_code",
                paper_test_mrr=0.4 + seed / 100)
    log_run(uri, "umls", "distmult", 100, 0.4, protocol="paper_code", paper_test_mrr=0.45)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    _fill(uri)
    return uri


@pytest.fixture(scope="module")
def record(store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("record") / "runs"
    report = R.export_record(store, folder)
    assert report.added == 8 and report.kept == 0
    return folder


def test_record_format(record):
    files = R.record_files(record)
    assert sorted(files) == ["kdkge-kinship", "kdkge-umls"]
    raw = files["kdkge-umls"].read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip mtime 0
    lines = gzip.decompress(raw).decode().splitlines()
    runs = [json.loads(line) for line in lines]
    assert len(runs) == 7 and all(r["status"] == "FINISHED" for r in runs)
    assert [r["start_time"] for r in runs] == sorted(r["start_time"] for r in runs)
    assert lines[0] == json.dumps(runs[0], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    first = runs[0]
    assert set(first) == {"run_id", "experiment", "run_name", "status", "start_time", "end_time", "params", "tags",
                          "metrics", "loss"}
    assert first["loss"] == [1.234568, 0.5, 0.25, 0.1234568]  # 7 significant digits
    assert "loss" not in first["metrics"] and first["metrics"]["test_mrr"] == 0.517
    assert first["tags"]["model"] == "distmult" and "protocol" not in first["tags"]
    assert first["params"]["lr"] == "0.01" and first["run_name"] == "distmult-umls-289"
    code = next(r for r in runs if r["tags"].get("protocol") == "paper_code" and r["metrics"].get("best_epoch"))
    assert code["metrics"]["paper_test_mrr"] == pytest.approx(0.71) and code["loss"] == [1.234568, 0.5]


def test_export_twice_is_byte_identical(store, record, tmp_path):
    before = {p.name: p.read_bytes() for p in record.iterdir()}
    report = R.export_record(store, record)
    assert (report.added, report.updated, report.unchanged, report.written) == (0, 0, 8, [])
    assert {p.name: p.read_bytes() for p in record.iterdir()} == before
    fresh = tmp_path / "again"
    R.export_record(store, fresh)
    assert {p.name: p.read_bytes() for p in fresh.iterdir()} == before


def test_a_smaller_store_never_shrinks_the_record(record, tmp_path):
    folder = tmp_path / "runs"
    folder.mkdir()
    for p in record.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    small = f"sqlite:///{tmp_path / 'small.db'}"
    log_run(small, "umls", "distmult", 144, 0.9)
    report = R.export_record(small, folder)
    assert (report.added, report.kept) == (1, 8)
    assert len(R.read_record(folder)) == 9
    assert (folder / "kdkge-kinship.jsonl.gz").read_bytes() == (record / "kdkge-kinship.jsonl.gz").read_bytes()
    # an empty or missing store changes nothing either
    assert R.export_record(f"sqlite:///{tmp_path / 'none.db'}", folder).kept == 9
    assert not (tmp_path / "none.db").exists()


def test_export_updates_a_run_by_id(record, tmp_path):
    runs = R.read_record(record)
    changed = dict(runs[0], metrics={**runs[0]["metrics"], "test_mrr": 0.1})
    report = R.ExportReport()
    merged = R.merge_records(runs, [changed], report)
    assert (report.updated, report.kept, len(merged)) == (1, len(runs) - 1, len(runs))
    assert next(r for r in merged if r["run_id"] == changed["run_id"])["metrics"]["test_mrr"] == 0.1


def test_nonfinite_values_survive():
    data = R.encode_lines([{"run_id": "a", "start_time": 1, "metrics": {"x": R._enc(float("nan")), "y": R._enc(float("inf"))}}])
    [rec] = R.decode_lines(data)
    assert rec["metrics"] == {"x": "NaN", "y": "Infinity"}
    assert R._dec(rec["metrics"]["y"]) == float("inf")


def test_import_is_faithful_and_idempotent(store, record, tmp_path):
    from mlflow.tracking import MlflowClient

    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    report = R.import_record(fresh, record)
    assert (report.imported, report.skipped_id, report.skipped_hash) == (8, 0, 0)
    assert sorted(report.experiments_created) == ["kdkge-kinship", "kdkge-umls"]
    again = R.import_record(fresh, record)
    assert (again.imported, again.skipped_id) == (0, 8)
    client = MlflowClient(fresh)
    exp = client.get_experiment_by_name("kdkge-umls")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    old = find_runs(store, experiment="kdkge-umls")
    new = find_runs(fresh, experiment="kdkge-umls")
    assert len(new) == 7 and set(new["status"]) == {"FINISHED"}
    first = old[old["tags.mlflow.runName"] == "distmult-umls-289"].sort_values("start_time").iloc[0]
    copy = new[new["tags.imported_from_record"] == first["run_id"]].iloc[0]
    assert copy["tags.mlflow.runName"] == "distmult-umls-289" and copy["start_time"] == first["start_time"]
    assert copy["end_time"] == first["end_time"] and copy["params.lr"] == "0.01"
    assert copy["metrics.test_mrr"] == first["metrics.test_mrr"]
    history = client.get_metric_history(copy["run_id"], "loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
        [(1, 1.234568), (2, 0.5), (3, 0.25), (4, 0.1234568)]
    # a store that already holds a FINISHED run of a configuration does not get the record's copy
    other = f"sqlite:///{tmp_path / 'other.db'}"
    log_run(other, "kinship", "distmult", 289, 0.568)
    mixed = R.import_record(other, record)
    assert (mixed.imported, mixed.skipped_hash) == (7, 1)


def test_store_record_store_tables_round_trip_is_byte_identical(store, record, tmp_path):
    """store → record → fresh store → tables gives the files the first store gives; so does the record."""
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    R.import_record(fresh, record)
    outs = {}
    for name, args in (("store", ["--tracking-uri", store]), ("imported", ["--tracking-uri", fresh]),
                       ("record", ["--from-record", str(record)])):
        outs[name] = tmp_path / name
        assert T.main([*args, "--out", str(outs[name]), "--no-log"]) == 0
    files = {p.name: p.read_bytes() for p in outs["store"].iterdir()}
    assert {"table2.md", "table2_paper_code.md", "table2_seeds_paper_code.md", "REPRODUCTION.md"} <= set(files)
    for name in ("imported", "record"):
        assert {p.name: p.read_bytes() for p in outs[name].iterdir()} == files, name
    # and the imported store exports to the same record
    again = tmp_path / "again"
    R.export_record(fresh, again)
    assert {p.name: p.read_bytes() for p in again.iterdir()} == {p.name: p.read_bytes() for p in record.iterdir()}


def test_tables_read_the_record_when_the_store_has_no_runs(record, tmp_path, capsys):
    empty = f"sqlite:///{tmp_path / 'none.db'}"
    report = T.make_tables(empty, out=tmp_path / "results", log_experiment="kdkge-tables", record_dir=record)
    assert report.source == "record" and report.logged_run_id is None  # never logs when reading the record
    assert "has no kdkge runs: reading the run record" in capsys.readouterr().out
    assert (tmp_path / "results" / "table2.md").exists() and not (tmp_path / "none.db").exists()
    store_only = T.make_tables(empty, out=tmp_path / "r2", log_experiment=None, source="store", record_dir=record)
    assert store_only.tables == {} and not (tmp_path / "r2").exists()


def test_cli(store, tmp_path, capsys):
    folder = tmp_path / "runs"
    assert R.main(["export", "--tracking-uri", store, "--record", str(folder)]) == 0
    assert "8 added" in capsys.readouterr().out
    assert R.main(["show", "--record", str(folder)]) == 0
    shown = capsys.readouterr().out
    assert "protocol=paper_code loss=softmax_ce: 5" in shown and "7 runs" in shown
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert R.main(["import", "--tracking-uri", fresh, "--record", str(folder), "--experiments", "kdkge-kinship"]) == 0
    assert "1 imported" in capsys.readouterr().out
    assert len(find_runs(fresh, experiment="kdkge-kinship")) == 1 and find_runs(fresh, experiment="kdkge-umls").empty
