"""Runs logged by MlflowTracker show up in a real `mlflow ui`, seen through a real browser.

Drives Debian's /usr/bin/chromium with Playwright (never `playwright install`);
skipped only if that browser or the playwright package is missing.
"""

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

from kdkge.tracking import MlflowTracker

CHROMIUM = "/usr/bin/chromium"
RUNS = {"kd-distmult-umls": 0.5123, "distmult-umls": 0.4321}  # run name -> test_mrr
UI_START_TIMEOUT_S = 180

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mlflow_executable() -> str:
    beside = Path(sys.executable).with_name("mlflow")
    return str(beside) if beside.exists() else (shutil.which("mlflow") or "mlflow")


@pytest.fixture
def sync_playwright():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not found (install Debian's chromium: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[dev]')")
    return sync_playwright


@pytest.fixture
def logged_runs(tmp_path):
    """A fresh SQLite store with two finished runs; returns (uri, experiment_id, {name: run_id})."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MlflowTracker(uri, experiment="ui-test")
    run_ids = {}
    for name, mrr in RUNS.items():
        run_ids[name] = tracker.start_run(name, tags={"model": name.split("-umls")[0]},
                                          params={"model": {"name": name}})
        tracker.log_metrics({"test_mrr": mrr})
        tracker.end_run()
    return uri, tracker.experiment_id, run_ids


def _stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group led by ``proc`` (started with a new session); SIGKILL stragglers."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture
def mlflow_ui(logged_runs, tmp_path):
    """`mlflow ui` on the store, on a free loopback port; yields its base URL."""
    uri = logged_runs[0]
    port = _free_port()
    log = open(tmp_path / "mlflow-ui.log", "wb")
    proc = subprocess.Popen(
        [_mlflow_executable(), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + UI_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow ui exited with {proc.returncode}:\n"
                            + (tmp_path / "mlflow-ui.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"mlflow ui did not answer within {UI_START_TIMEOUT_S} s:\n"
                                + (tmp_path / "mlflow-ui.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base
    finally:
        # mlflow ui starts a server plus job-consumer processes in its session:
        # stop that whole process group and wait until it is gone
        _stop_group(proc)
        log.close()


def test_runs_and_test_mrr_visible_in_mlflow_ui(sync_playwright, logged_runs, mlflow_ui):
    from playwright.sync_api import expect

    _, experiment_id, run_ids = logged_runs
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{mlflow_ui}/#/experiments/{experiment_id}/runs")
            for name in RUNS:  # the runs table renders client-side
                expect(page.get_by_text(name, exact=True)).to_be_visible(timeout=90_000)

            # MLflow 3.17's runs table shows no metric columns by default: add
            # test_mrr through the "Columns" menu, as a person would.
            page.get_by_role("button", name="Columns").click()
            page.get_by_role("dialog").get_by_text("test_mrr", exact=True).click()
            page.keyboard.press("Escape")
            expect(page.get_by_role("columnheader", name="test_mrr").first).to_be_attached(timeout=30_000)

            for name, mrr in RUNS.items():
                value = page.get_by_role("gridcell").filter(has_text=f"{mrr:.4f}")
                expect(value).to_have_count(1, timeout=30_000)
                value.scroll_into_view_if_needed()
                expect(value).to_be_in_viewport()
                # the grid renders the pinned name column and the metric column
                # as separate row elements sharing the run id: the value belongs to this run
                row = page.locator(f"[role=row][row-id='{run_ids[name]}']")
                expect(row.filter(has_text=name)).to_have_count(1)
                expect(row.filter(has_text=f"{mrr:.4f}")).to_have_count(1)
            page.screenshot(path=str(Path(os.environ.get("KDKGE_UI_SCREENSHOT", "/tmp/kdkge-mlflow-ui.png"))))
        finally:
            browser.close()
