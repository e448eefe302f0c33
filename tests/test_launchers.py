"""Other Hydra launchers: submitit (the SLURM plugin's local mode) against a real ``mlflow server``,
and a one-line message when a launcher plugin is not installed."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hydra_plugins.kdkge_sweeper.kdkge_sweeper import missing_launcher
from kdkge.config import CONF_DIR
from kdkge.parent_runs import without_parents
from kdkge.tracking import find_runs

ROOT = CONF_DIR.parent
SERVER_START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), **extra)
    env.pop("HYDRA_FULL_ERROR", None)
    return env


@pytest.fixture
def mlflow_server(tmp_path):
    """``mlflow server`` on 127.0.0.1 (a free port) with its own SQLite store; killed at the end."""
    mlflow = Path(sys.executable).with_name("mlflow")
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [str(mlflow) if mlflow.exists() else (shutil.which("mlflow") or "mlflow"), "server",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination", str(tmp_path / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env(),
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield uri
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_two_job_sweep_through_submitit_local_against_an_mlflow_server(mlflow_server, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    out = subprocess.run(
        [sys.executable, "train.py", "-m", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
         "hydra.launcher.timeout_min=10", "dataset=nations", "dim=4,9", "epochs=2", "eval_every=1", "progress=false",
         f"hydra.sweep.dir={tmp_path / 'multirun'}"],
        cwd=ROOT, env=_env(MLFLOW_TRACKING_URI=mlflow_server), capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "threads=1 per job" in out.stdout  # from the launcher's cpus_per_task
    runs = find_runs(mlflow_server, "kdkge-nations")
    jobs = without_parents(runs)
    assert len(jobs) == 2 and set(jobs["status"]) == {"FINISHED"}, jobs[["status", "tags.error"]] if "tags.error" in jobs else jobs
    assert sorted(jobs["tags.dim"].astype(int)) == [4, 9]
    assert all(0 < v <= 1 for v in jobs["metrics.test_mrr"]) and all(0 < v <= 1 for v in jobs["metrics.valid_mrr"])
    assert set(jobs["params.threads"]) == {"1"}
    assert set(jobs["params.tracking.uri"]) == {mlflow_server}  # passed to the jobs by the sweeper
    assert len(set(jobs["tags.pid"])) == 2  # each job in its own process
    [parent] = runs.loc[runs["tags.kind"] == "sweep", "run_id"]
    assert set(jobs["tags.mlflow.parentRunId"]) == {parent}
    assert (tmp_path / "multirun" / ".submitit").is_dir()


def test_missing_launcher_plugin_is_one_line(tmp_path):
    for dry in ("true", "false"):
        out = subprocess.run(
            [sys.executable, "train.py", "-m", "hydra/launcher=ray_cluster", f"hydra.sweeper.dry_run={dry}",
             "dataset=nations", "tracking=none", f"hydra.sweep.dir={tmp_path}"],
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120,
        )
        assert "Traceback" not in out.stderr + out.stdout
        message = "the launcher hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher is not installed: " \
                  "pip install hydra-ray-launcher==1.2.2"
        if dry == "true":  # the dry run still plans, and says what is missing
            assert out.returncode == 0 and f"note: {message}" in out.stdout, out.stderr[-2000:]
        else:
            assert out.returncode == 1 and out.stderr.startswith(f"error: {message}"), out.stderr[-2000:]
    assert missing_launcher("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher") is None
    assert "install the Hydra plugin" in missing_launcher("hydra_plugins.nope.Launcher")
