"""A new SQLite store starts as a copy of an empty one (kdkge.mlflow_store): same schema, own Default experiment."""

import sqlite3

import pytest
from mlflow.store.db import utils as db_utils

from kdkge import mlflow_store
from kdkge.mlflow_store import ensure_store


@pytest.fixture
def template(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "empty.db"
    monkeypatch.setattr(mlflow_store, "_empty_store_path", lambda: path)
    return path


def _schema(db):
    with sqlite3.connect(db) as con:
        tables = con.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        version = con.execute("SELECT version_num FROM alembic_version").fetchall()
        experiments = con.execute("SELECT experiment_id, name, artifact_location FROM experiments").fetchall()
    return tables, version, experiments


def test_the_second_store_is_a_copy_with_the_same_schema_and_its_own_default_experiment(tmp_path, template, monkeypatch):
    ensure_store(f"sqlite:///{tmp_path}/a/mlflow.db")
    assert template.is_file()
    with sqlite3.connect(template) as con:  # tables only: the Default experiment is added per store
        assert con.execute("SELECT count(*) FROM experiments").fetchone()[0] == 0

    def no_migrations(engine):
        raise AssertionError("the copy needs no migrations")

    monkeypatch.setattr(db_utils, "_initialize_tables", no_migrations)
    ensure_store(f"sqlite:///{tmp_path}/b/mlflow.db")
    tables_a, version_a, [default_a] = _schema(tmp_path / "a" / "mlflow.db")
    tables_b, version_b, [default_b] = _schema(tmp_path / "b" / "mlflow.db")
    assert tables_a == tables_b and version_a == version_b == [(db_utils._get_latest_schema_revision(),)]
    assert default_a[:2] == default_b[:2] == (0, "Default")
    assert default_a[2] != default_b[2] and str(tmp_path / "b") in default_b[2]  # each store's own artifact root


@pytest.mark.parametrize("content", [b"not a database\x00", b""])
def test_a_damaged_template_is_rebuilt_and_the_store_still_made(tmp_path, template, content):
    template.parent.mkdir(parents=True)
    template.write_bytes(content)
    name = "garbage" if content else "empty"
    ensure_store(f"sqlite:///{tmp_path}/{name}/mlflow.db")
    _, version, [default] = _schema(tmp_path / name / "mlflow.db")
    assert version == [(db_utils._get_latest_schema_revision(),)] and default[1] == "Default"
    assert _schema(template)[2] == []  # made again from the new store, tables only
