"""Entry points and their documentation: --help of train.py and eval.py, make ui, links to the docs."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from kdkge.config import CONF_DIR

ROOT = CONF_DIR.parent


def test_help_marks_internal_keys_and_shows_resume_and_eval():
    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    internal = out.stdout.split("Internal keys", 1)
    assert len(internal) == 2, "the help has no section for the sweeper's internal keys"
    for key in ("sweep_id", "stack", "parent_run"):
        assert re.search(rf"^\s+{key}\s+\S", internal[1], re.M), key
    assert "python train.py resume_run=<MLflow run id>" in out.stdout and "python eval.py run_id=" in out.stdout
    out = subprocess.run([sys.executable, "eval.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Usage: python eval.py run_id=<MLflow run id>" in out.stdout and "prefix: eval/" in out.stdout


def _make_ui(uri: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    out = subprocess.run(["make", "-n", "ui"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_make_ui_serves_the_store_of_mlflow_tracking_uri():
    assert '--backend-store-uri "sqlite:///mlflow.db"' in _make_ui(None)
    assert '--backend-store-uri "sqlite:////data/other.db"' in _make_ui("sqlite:////data/other.db")
    assert 'case "http://mlflow-host:5000" in' in _make_ui("http://mlflow-host:5000")  # a server: open its own UI


def test_no_links_to_missing_docs():
    pattern = "docs/" + "README"  # (spelled so that this file does not match itself)
    # the files the repository holds (git ls-files), not Hydra outputs or other ignored leftovers
    files = subprocess.run(["git", "ls-files", "*.py", "*.yaml", "Makefile", "*.toml", "*.md"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(files) > 50
    hits = [f"{name}:{n}" for name in files for n, line in enumerate((ROOT / name).read_text().splitlines(), 1)
            if pattern in line]
    assert not hits, hits
