"""Nothing twice: concurrent launches on one store never train one configuration twice (kdkge.claims)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kdkge.parent_runs import without_parents

from kdkge import app, claims
from kdkge.tracking import find_runs

ROOT = Path(__file__).resolve().parent.parent


def hold_in_child(directory: Path, store: str, digest: str) -> subprocess.Popen:
    """A child process that takes the claim and sleeps (until killed)."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from kdkge import claims
        claim = claims.acquire({store!r}, {digest!r}, Path({str(directory)!r}))
        print("held" if claim.held else "not held", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_claim_excludes_other_processes_and_dies_with_its_holder(tmp_path):
    child = hold_in_child(tmp_path, "sqlite:////s.db#e", "abc")
    try:
        claim = claims.acquire("sqlite:////s.db#e", "abc", tmp_path)
        assert not claim.held
        assert claim.holder["pid"] == child.pid
        assert f"process {child.pid} on " in claim.describe_holder() and str(claim.path) in claim.describe_holder()
        assert claims.acquire("sqlite:////s.db#e", "other", tmp_path).held  # other configurations are free
        assert claims.acquire("sqlite:////other.db#e", "abc", tmp_path).held  # and so is another store
    finally:
        child.send_signal(signal.SIGKILL)  # dies without releasing: the kernel drops its lock
        child.wait()
    claim = claims.acquire("sqlite:////s.db#e", "abc", tmp_path)
    assert claim.held and claim.holder["pid"] == os.getpid()
    claim.release()


def test_release_deletes_the_file_and_a_second_claim_in_one_process_is_refused(tmp_path):
    with claims.claimed("u", "h", tmp_path) as first:
        assert first.held and first.path.exists()
        assert not claims.acquire("u", "h", tmp_path).held
    assert not first.path.exists()
    with claims.claimed("u", "h", tmp_path) as again:
        assert again.held


def test_without_a_writable_claim_folder_runs_go_on_with_a_warning(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(claims, "_warned", False)
    claim = claims.acquire("u", "h", tmp_path / "file" / "claims")
    assert claim.held and claim.path is None
    assert "cannot claim runs in" in capsys.readouterr().out


def test_training_states_are_keyed_by_store_and_legacy_states_are_adopted(tmp_path, monkeypatch):
    monkeypatch.setenv("KDKGE_STATE_DIR", str(tmp_path))
    a = app.training_state_path("d" * 64, "sqlite:////a.db#kdkge-nations")
    b = app.training_state_path("d" * 64, "sqlite:////b.db#kdkge-nations")
    assert a != b and a.parent == b.parent == tmp_path
    assert a.name == f"{'d' * 64}-{hashlib.sha256(b'sqlite:////a.db#kdkge-nations').hexdigest()[:12]}.pt"
    (tmp_path / f"{'e' * 64}.pt").write_bytes(b"old layout")
    adopted = app.training_state_path("e" * 64, "sqlite:////a.db#kdkge-nations")
    assert adopted.read_bytes() == b"old layout" and not (tmp_path / f"{'e' * 64}.pt").exists()


SWEEP = ["-m", "dataset=nations", "dim=4", "epochs=40", "batch_size=512", "threads=1", "progress=false", "eval_every=0",
         "checkpoint=false", "checkpoint_every=0"]


def launch(uri, sweep_dir, *extra):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([sys.executable, "train.py", *SWEEP, *extra, f"hydra.sweep.dir={sweep_dir}"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("stacking", ["hydra.sweeper.stack=false", "hydra.sweeper.stack=true"])
def test_two_launches_of_one_sweep_train_each_configuration_once(tmp_path, stacking):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    from kdkge.tracking import ensure_store

    ensure_store(uri)
    procs = [launch(uri, tmp_path / f"sweep{i}", "seed=1,2,3", stacking) for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out
        assert "Traceback" not in out
    runs = without_parents(find_runs(uri, "kdkge-nations"))  # each launch also records its sweep's parent run
    finished = runs[runs["status"] == "FINISHED"]
    assert len(finished) == 3, outputs
    assert finished["tags.config_hash"].nunique() == 3  # 0 duplicate FINISHED runs
    assert set(runs["status"]) == {"FINISHED"}
    said = "\n".join(outputs)
    # the second launch said why it did not train a configuration: claimed by the first, or finished meanwhile
    assert "another process is training config hash" in said or "already holds FINISHED" in said or "skipped" in said
