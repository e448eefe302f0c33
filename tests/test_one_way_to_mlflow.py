"""One way to reach MLflow (issue 15): reading goes through ``kdkge/store.py``'s ``RunStore``, writing
through ``kdkge/tracking.py``'s trackers, and the store itself (URI, creation, locks) is ``kdkge/mlflow_store.py``.

Scanned: every module of ``kdkge/`` and ``hydra_plugins/`` and the scripts ``train.py``, ``eval.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(p for d in ("kdkge", "hydra_plugins") for p in (ROOT / d).rglob("*.py")),
                  ROOT / "train.py", ROOT / "eval.py"])
READER, WRITER, STORE = "kdkge/store.py", "kdkge/tracking.py", "kdkge/mlflow_store.py"
#: What only the reader and the writer touch: their client and the writer's retrying write.
PRIVATE_ATTRIBUTES = {"client", "_client", "_write"}
#: MLflow modules that hold clients, stores or the global ("fluent") run state.
MLFLOW_ENTRY_POINTS = ("mlflow.tracking", "mlflow.store", "mlflow.client")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _client_constructions(tree: ast.AST) -> int:
    return sum(1 for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "id", getattr(node.func, "attr", None)) == "MlflowClient")


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_mlflow_is_reached_only_through_the_store_and_the_trackers(path):
    rel = _rel(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if rel not in (READER, WRITER):
        assert _client_constructions(tree) == 0, f"{rel} builds an MlflowClient: read with kdkge.store.RunStore, " \
                                                 "write with a kdkge.tracking tracker"
        touched = sorted({(node.attr, node.lineno) for node in ast.walk(tree)
                          if isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES})
        assert not touched, f"{rel} reaches into a client or a tracker's writes: {touched}"
    if rel not in (READER, WRITER, STORE):
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        wrong = [m for m in imported if m == "mlflow" or m.startswith(MLFLOW_ENTRY_POINTS)]
        assert not wrong, f"{rel} imports {wrong}: go through kdkge.store / kdkge.tracking"


def test_one_client_reads_and_one_writes():
    for rel in (READER, WRITER):
        assert _client_constructions(ast.parse((ROOT / rel).read_text(encoding="utf-8"))) == 1, rel
