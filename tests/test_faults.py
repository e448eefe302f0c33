"""Nothing lost: a killed run resumes to the same result, orphans are closed, NaN runs fail cleanly."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kdkge.tracking import find_runs

ROOT = Path(__file__).resolve().parent.parent
BASE = ["train.py", "dataset=nations", "model=kd_rel_distmult", "dim=16", "epochs=60", "batch_size=256",
        "threads=1", "progress=false", "eval_every=0", "checkpoint=false", "checkpoint_every=1"]


def launch(uri, *extra, wait=True):
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    cmd = [sys.executable, *BASE, *extra]
    if wait:
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def state_files(digest_prefix=""):
    folder = ROOT / ".cache" / "training-state"
    return list(folder.glob(f"{digest_prefix}*.pt")) if folder.is_dir() else []


@pytest.mark.slow
def test_kill_9_then_relaunch_resumes_and_closes_the_orphan(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    # resumed vs uninterrupted: compared in float64 (memory alignment may move MKL's last bits)
    reference = launch(f"sqlite:///{tmp_path}/reference.db", "checkpoint_every=0", "dtype=float64")
    assert reference.returncode == 0, reference.stderr
    expected = find_runs(f"sqlite:///{tmp_path}/reference.db", "kdkge-nations").iloc[0]
    digest = expected["tags.config_hash"]
    for stale in state_files(digest):
        stale.unlink()

    proc = launch(uri, "dtype=float64", wait=False)
    deadline = time.time() + 120
    while time.time() < deadline:
        files = state_files(digest)
        if files and torch.load(files[0], weights_only=False)["epoch"] >= 10:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(state_files(digest)[0], weights_only=False)["epoch"]
    assert 10 <= killed_at < 60
    runs = find_runs(uri, "kdkge-nations")
    assert list(runs["status"]) == ["RUNNING"]  # SIGKILL: the process could not end its run

    again = launch(uri, "dtype=float64")
    assert again.returncode == 0, again.stderr
    assert "marked run" in again.stdout and "KILLED" in again.stdout
    assert f"continuing from the training state of epoch {killed_at}" in again.stdout
    runs = find_runs(uri, "kdkge-nations").set_index("status")
    assert sorted(runs.index) == ["FINISHED", "KILLED"]
    finished = runs.loc["FINISHED"]
    assert finished["tags.resumed_from_epoch"] == str(killed_at)
    for key in ("metrics.test_mrr", "metrics.valid_mrr", "metrics.train_mrr", "metrics.test_hits_10"):
        assert finished[key] == pytest.approx(expected[key], abs=1e-12)
    assert not state_files(digest), "a finished run removes its training state"
    assert "died before the run ended" in runs.loc["KILLED"]["tags.error"]

    third = launch(uri, "dtype=float64")  # nothing left to do
    assert "skip" in third.stdout and len(find_runs(uri, "kdkge-nations")) == 2


def test_nan_loss_fails_the_run_with_its_epoch_and_exit_2(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = launch(uri, "lr=1e30", "model=distmult", "dim=4", "checkpoint_every=0", "epochs=30")
    assert out.returncode == 2
    assert "error: training loss became" in out.stderr and "at epoch" in out.stderr
    assert "Traceback" not in out.stderr
    run = find_runs(uri, "kdkge-nations").iloc[0]
    assert run["status"] == "FAILED" and "at epoch" in run["tags.error"]


def test_sigterm_ends_the_run_as_killed(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = launch(uri, "epochs=5000", "checkpoint_every=0", wait=False)
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = find_runs(uri, "kdkge-nations")
        if len(runs) and (runs["status"] == "RUNNING").all():
            break
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    run = find_runs(uri, "kdkge-nations").iloc[0]
    assert run["status"] == "KILLED" and "signal" in run["tags.error"]


def test_a_swallowed_interrupt_still_stops_training_after_the_epoch(monkeypatch):
    """A SIGTERM whose KeyboardInterrupt lands in a GC/weakref callback is printed as "Exception
    ignored" and lost (seen once in ~20 kills while SQLAlchemy collected an event registry); the
    handler also records the signal and the end of the next epoch raises it."""
    from kdkge import interrupts, recording
    from kdkge.tracking import NullTracker

    log = recording.MetricLog(NullTracker(), flush_every=100, epochs=10)
    log.on_epoch(1, [0.5])  # nothing pending: goes on
    monkeypatch.setattr(interrupts, "SIGNALLED", [signal.SIGTERM])
    with pytest.raises(KeyboardInterrupt, match="terminated by signal 15"):
        log.on_epoch(2, [0.4])
    assert log.losses == [(1, 0.5), (2, 0.4)]  # the finished epoch's loss is kept


def test_a_ctrl_c_is_recognised_through_the_exception_chain(monkeypatch):
    """kdkge.interrupts.caused_by_signal: a KeyboardInterrupt anywhere in the cause/context chain, or a
    signal recorded by the handlers, makes an exception an interruption; anything else is a failure."""
    from kdkge import interrupts

    monkeypatch.setattr(interrupts, "SIGNALLED", [])

    def surfaced(wrapper: type[BaseException]) -> BaseException:
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise wrapper("half-done bookkeeping")  # context: the KeyboardInterrupt
        except BaseException as exc:  # noqa: BLE001 - the test needs the raised object
            return exc

    assert interrupts.caused_by_signal(KeyboardInterrupt())
    assert interrupts.caused_by_signal(surfaced(AttributeError))
    outer = ValueError("outer")
    outer.__cause__ = surfaced(RuntimeError)
    assert interrupts.caused_by_signal(outer)  # two links down
    plain = AttributeError("a real bug")
    assert not interrupts.caused_by_signal(plain)
    looped = ValueError("a"); looped.__context__ = ValueError("b"); looped.__context__.__context__ = looped
    assert not interrupts.caused_by_signal(looped)  # a cycle ends the walk
    monkeypatch.setattr(interrupts, "SIGNALLED", [signal.SIGINT])
    assert interrupts.caused_by_signal(plain)  # the handler saw Ctrl-C: whatever escaped is its trace
