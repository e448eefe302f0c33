"""Nothing wrong: bad input is one line naming what, where and how to fix it, with a non-zero exit and no traceback.

In process through :func:`kdkge.app.main` (what ``train.py`` calls) where that is enough; through
``python train.py`` subprocesses for what Hydra itself does (the command line, its output folder)
and for read-only folders (as root, the child runs without CAP_DAC_OVERRIDE via ``setpriv``, so
permissions bind).
"""

from __future__ import annotations

import http.server
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from hydra import compose

from kdkge import app, search
from kdkge.config import CONF_DIR
from kdkge.data import DATA_ROOT
from kdkge.tracking import ensure_store, find_runs

ROOT = CONF_DIR.parent
TINY = ["dataset=nations", "epochs=1", "dim=4", "threads=1", "progress=false", "eval_every=0", "batch_size=2048",
        "checkpoint=false", "checkpoint_every=0"]


def one_line(text: str) -> str:
    text = text.strip()
    assert text, "no message"
    assert "\n" not in text, text
    assert "Traceback" not in text
    return text


def main_error(cfg, capsys) -> str:
    """Run ``app.main(cfg)``; assert it exits with status 2 and one ``error: ...`` line; return the line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        app.main(cfg)
    assert info.value.code == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("error: ")
    return err


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('bad') / 'mlflow.db'}"
    ensure_store(uri)
    return uri


def cfg_of(*overrides):
    return compose("train", overrides=list(overrides))


# --------------------------------------------------------------------------- #
# values that cannot run: refused by validate() before anything starts
# --------------------------------------------------------------------------- #

CPUS = os.cpu_count() or 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["threads=100000"], f"threads=100000 is more than 4× the {CPUS} CPUs of this machine: use at most threads={CPUS}"),
        (["checkpoint_every=-1"], "checkpoint_every=-1 must be >= 0 (training state every N epochs; 0 = never)"),
        (["lr=inf"], "lr=inf must be positive and finite (the Adam learning rate, e.g. lr=0.01)"),
        (["lr=-inf"], "lr=-inf must be positive and finite"),
        (["lr=nan"], "lr=nan must be positive and finite"),
        (["seed=4294967296"], "seed=4294967296 must be an integer in [0, 4294967295]"),
        (["seed=100000000000000000000"], "seed=100000000000000000000 must be an integer in [0, 4294967295]"),
        (["tracking.uri=ftp://example.org/mlflow"], "tracking.uri='ftp://example.org/mlflow': the scheme ftp: is not a supported tracking store: use sqlite:///"),
        (["tracking.uri=file:///tmp/mlruns"], "tracking.uri='file:///tmp/mlruns': the scheme file: is not a supported tracking store"),
        (["tracking.uri=mlruns"], "tracking.uri='mlruns': a path without a scheme is not a supported tracking store"),
        (["tracking.uri=sqlite://mlflow.db"], "tracking.uri='sqlite://mlflow.db': the scheme sqlite: is not a supported tracking store"),
    ],
)
def test_values_that_cannot_run_fail_in_validate(hydra_conf, overrides, message):
    with pytest.raises(ValueError) as info:
        app.validate(cfg_of(*TINY, *overrides))
    assert message in one_line(str(info.value))


def test_an_unsupported_scheme_in_the_environment_is_named(hydra_conf, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "ftp://example.org/x")
    with pytest.raises(app.ConfigError, match=r"^MLFLOW_TRACKING_URI='ftp://example.org/x': the scheme ftp: is not"):
        app.validate(cfg_of(*TINY))
    app.validate(cfg_of(*TINY, "tracking=none"))  # nothing is recorded: the URI does not matter


def test_a_huge_dim_is_checked_without_allocating_it(hydra_conf):
    spec, stored = app.validate(cfg_of(*TINY, "model=distmult", "dim=100000000"))  # meta device: instant, no 1.6 GB
    assert stored == 100000000


# --------------------------------------------------------------------------- #
# resources and data: refused after the data is loaded, before the model is built and
# anything is trained; the MLflow run is FAILED with the message (as for any data error)
# --------------------------------------------------------------------------- #


def assert_nothing_recorded(store, experiment):
    assert len(find_runs(store, experiment)) == 0


def assert_failed_with(store, experiment, message):
    runs = find_runs(store, experiment)
    assert list(runs["status"]) == ["FAILED"]
    assert message in runs.iloc[0]["tags.error"]
    assert "metrics.loss" not in runs or runs["metrics.loss"].isna().all()  # not a single epoch ran


@pytest.mark.parametrize(
    "overrides, pieces",
    [
        (["protocol=paper_text", "strategy=negsamp", "strategy.num_negatives=100000"],
         ["strategy.num_negatives=100000 is more than 10× the 14 entities of nations", "use at most 14"]),
        (["model=distmult", "dim=100000000"],
         ["model=distmult dim=100000000 on nations (15 entities, batch_size=2048) needs about", "are available (",
          "lower dim or batch_size"]),
        (["model=kd_distmult", "dim=100000000"], ["model=kd_distmult dim=100000000 on nations", "needs about"]),
        (["model=complex", "dim=100000000", "batch_size=64"], ["model=complex dim=100000000", "batch_size=64"]),
    ],
    ids=["negatives", "distmult-memory", "kd-memory", "complex-memory"],
)
def test_resources_are_refused_before_training(hydra_conf, store, capsys, request, overrides, pieces):
    experiment = f"resources-{request.node.callspec.id}"
    cfg = cfg_of(*TINY, f"tracking.uri={store}", f"tracking.experiment={experiment}", *overrides)
    err = main_error(cfg, capsys)
    for piece in pieces:
        assert piece in err
    assert_failed_with(store, experiment, pieces[0])


def test_the_memory_check_can_be_skipped_and_reads_a_real_number(hydra_conf, monkeypatch):
    from kdkge.experiment import RunSpec, available_memory, check_resources
    from kdkge.data import load_dataset

    free, source = available_memory(torch.device("cpu"))
    assert free > 0 and source
    spec = RunSpec(dataset="nations", model="distmult", dim=100_000_000)
    monkeypatch.setenv("KDKGE_MEMORY_CHECK", "0")
    check_resources([spec], load_dataset("nations"))  # skipped: no error


def custom(tmp_path, name="kg", **files):
    folder = tmp_path / name
    shutil.copytree(DATA_ROOT / "nations", folder)
    for split, text in files.items():
        (folder / f"{split}.txt").write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


@pytest.mark.parametrize(
    "files, pieces",
    [
        ({"valid": "x\tq\ty\ny\tq\tx\n"}, ["valid.txt: all 2 triples of the valid split use an entity or relation that never occurs"]),
        ({"test": "x\tq\ty\n"}, ["test.txt: all 1 triples of the test split"]),
        ({"train": "head\trelation\ttail\n" + (DATA_ROOT / "nations" / "train.txt").read_text()},
         ["train.txt:1: header line 'head\\trelation\\ttail': split files hold triples only; delete the line"]),
        ({"valid": b"brazil\tembassy\tusa\n\x00\x00\x00\n"}, ["valid.txt:2: NUL byte in the line"]),
        ({"train": (DATA_ROOT / "nations" / "train.txt").read_text() + "usa\tembassy^-1\tbrazil\n"},
         ["train.txt:1593: relation 'embassy^-1' ends in '^-1'", "rename the relation"]),
    ],
    ids=["valid-all-unseen", "test-all-unseen", "header", "nul", "reciprocal-name"],
)
@pytest.mark.parametrize("protocol", ["paper_code", "paper_text"])
def test_bad_custom_data_fails_before_training(hydra_conf, store, tmp_path, capsys, request, files, pieces, protocol):
    folder = custom(tmp_path, **files)
    experiment = f"data-{request.node.callspec.id}"
    cfg = cfg_of(*TINY, "dataset=custom", f"dataset.path={folder}", f"tracking.uri={store}",
                 f"tracking.experiment={experiment}", f"protocol={protocol}")
    err = main_error(cfg, capsys)
    for piece in pieces:
        assert piece in err
    assert str(folder) in err
    assert_failed_with(store, experiment, pieces[0])


# --------------------------------------------------------------------------- #
# tracking stores
# --------------------------------------------------------------------------- #


def test_a_garbage_store_file(hydra_conf, tmp_path, capsys):
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    err = main_error(cfg_of(*TINY, f"tracking.uri=sqlite:///{db}"), capsys)
    assert f"MLflow store {db} is not a readable MLflow SQLite database" in err
    assert f"mv {db} {db}.broken" in err


def test_a_store_whose_folder_is_a_file(hydra_conf, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    db = tmp_path / "file" / "mlflow.db"
    err = main_error(cfg_of(*TINY, f"tracking.uri=sqlite:///{db}"), capsys)
    assert f"MLflow store {db} cannot be created or written" in err and "writable" in err


def test_a_store_that_is_a_folder(hydra_conf, tmp_path, capsys):
    (tmp_path / "mlflow.db").mkdir()
    err = main_error(cfg_of(*TINY, f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"), capsys)
    assert f"is a folder, not a SQLite file: set tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}/mlflow.db" in err


@pytest.fixture
def web_server(tmp_path):
    """A plain web server (not MLflow) on 127.0.0.1."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("<html>hello</html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path / "www"), **kw)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_web_server_that_is_not_mlflow(hydra_conf, web_server, capsys):
    start = time.monotonic()
    err = main_error(cfg_of(*TINY, f"tracking.uri={web_server}"), capsys)
    assert f"error: {web_server} answers HTTP 404 but is not an MLflow tracking server" in err
    assert "check the host and port" in err
    assert time.monotonic() - start < 30


def test_a_store_locked_for_longer_than_the_timeout(hydra_conf, tmp_path, capsys, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
    monkeypatch.setenv("KDKGE_STORE_LOCK_TIMEOUT", "1.5")
    try:
        start = time.monotonic()
        err = main_error(cfg_of(*TINY, f"tracking.uri={uri}", "tracking.experiment=locked"), capsys)
        assert time.monotonic() - start < 30
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert f"MLflow store {tmp_path / 'mlflow.db'} is locked by another process: gave up after waiting" in err
    assert "KDKGE_STORE_LOCK_TIMEOUT=1.5" in err and f"fuser {tmp_path / 'mlflow.db'}" in err


def test_a_bad_lock_timeout_setting(hydra_conf, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KDKGE_STORE_LOCK_TIMEOUT", "soon")
    err = main_error(cfg_of(*TINY, f"tracking.uri=sqlite:///{tmp_path / 'new.db'}"), capsys)
    assert "KDKGE_STORE_LOCK_TIMEOUT='soon' must be a number of seconds (default 120)" in err


def test_a_killed_store_creation_is_cleaned_up(tmp_path):
    db = tmp_path / "mlflow.db"
    pid = dead_pid()
    leftovers = [tmp_path / f"mlflow.db.creating-{pid}{suffix}" for suffix in ("", "-journal", "-wal", "-shm")]
    for path in leftovers:
        path.write_bytes(b"half a store")
    alive = tmp_path / f"mlflow.db.creating-{os.getppid()}"  # a creation still running elsewhere: left alone
    alive.write_bytes(b"")
    ensure_store(f"sqlite:///{db}")
    assert not any(p.exists() for p in leftovers)
    assert alive.exists() and db.is_file()
    assert not list(tmp_path.glob(f"mlflow.db.creating-{os.getpid()}*"))  # our own creation left nothing either


def test_an_unwritable_training_state_folder_fails_before_training(hydra_conf, store, tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("KDKGE_STATE_DIR", str(tmp_path / "file" / "states"))
    err = main_error(cfg_of(*TINY, f"tracking.uri={store}", "tracking.experiment=states", "checkpoint_every=5"), capsys)
    assert f"training states cannot be written to {tmp_path / 'file' / 'states'}" in err
    assert "KDKGE_STATE_DIR" in err and "checkpoint_every=0" in err
    assert_nothing_recorded(store, "states")


# --------------------------------------------------------------------------- #
# python -m kdkge.search
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    "args, message",
    [
        (["--trials", "-1"], "error: --trials=-1 must be a positive integer (the number of trials to add to the study)"),
        (["--trials", "0"], "error: --trials=0 must be a positive integer"),
        (["--timeout", "-5"], "error: --timeout=-5.0 must be a positive number of seconds"),
        (["--timeout", "nan"], "error: --timeout=nan must be a positive number of seconds"),
    ],
)
def test_search_rejects_bad_counts(args, message, capsys):
    assert search.main(["--space", str(ROOT / "searches" / "umls_kd_distmult.yaml"), *args]) == 2
    assert message in one_line(capsys.readouterr().err)


def test_search_spaces_live_in_searches(capsys):
    assert search.load_space("umls_kd_distmult") == search.load_space(ROOT / "searches" / "umls_kd_distmult.yaml")
    assert not list((ROOT / "sweeps").glob("search_*.yaml")), "search spaces belong in searches/"
    assert search.main(["--space", "sweeps/search_umls_kd_distmult.yaml", "--trials", "1"]) == 2  # the old place
    assert "error: search spaces live in searches/ now, without the search_ prefix: --space searches/umls_kd_distmult.yaml" \
        == one_line(capsys.readouterr().err)


# --------------------------------------------------------------------------- #
# through python train.py (Hydra's own errors, read-only folders, a hostile training state)
# --------------------------------------------------------------------------- #


def train_py(*args, env=None, cwd=ROOT, unprivileged=False, timeout=300):
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    environment.pop("HYDRA_FULL_ERROR", None)
    cmd = [sys.executable, str(ROOT / "train.py"), *args]
    if unprivileged and os.geteuid() == 0:  # root ignores permission bits unless it drops CAP_DAC_OVERRIDE
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a folder read-only for the child")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *cmd]
    return subprocess.run(cmd, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)


def assert_cli_error(out, status, *pieces):
    assert out.returncode == status, out.stdout + out.stderr
    err = one_line(out.stderr)
    assert err.startswith("error: ")
    assert "Traceback" not in out.stdout
    for piece in pieces:
        assert piece in err, err
    return err


def read_only(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    return folder


def test_a_value_of_the_wrong_type_names_its_key(tmp_path):
    out = train_py(*TINY, "tracking=none", "seed=1e20", f"hydra.run.dir={tmp_path}")
    assert_cli_error(out, 1, "seed=1e20", "could not be converted to Integer", "(key: seed)")
    out = train_py(*TINY, "tracking=none", "epoch=5", f"hydra.run.dir={tmp_path}")
    assert_cli_error(out, 1, "Could not override 'epoch'", "use +epoch=5")


def test_lr_inf_and_huge_threads_name_their_key(tmp_path):
    assert_cli_error(train_py(*TINY, "tracking=none", "lr=inf", f"hydra.run.dir={tmp_path}"), 2,
                     "lr=inf must be positive and finite")
    assert_cli_error(train_py(*TINY, "tracking=none", "threads=100000", f"hydra.run.dir={tmp_path}"), 2,
                     "threads=100000 is more than 4×")  # torch.set_num_threads(100000) used to crash the process


def test_a_read_only_hydra_output_folder(tmp_path):
    outputs = read_only(tmp_path / "outputs")
    try:
        out = train_py(*TINY, "tracking=none", f"hydra.run.dir={outputs}/run", unprivileged=True)
        assert_cli_error(out, 2, f"Hydra's output folder {outputs}/run cannot be created (Permission denied: {outputs})",
                         "hydra.run.dir=<writable folder>")
        out = train_py("-m", *TINY, "tracking=none", "seed=1,2", f"hydra.sweep.dir={outputs}/sweep", unprivileged=True)
        assert_cli_error(out, 2, f"Hydra's output folder {outputs}/sweep cannot be created", "hydra.sweep.dir=")
    finally:
        outputs.chmod(0o755)


def test_a_read_only_store_folder_and_training_state_folder(tmp_path):
    stores = read_only(tmp_path / "stores")
    states = read_only(tmp_path / "states")
    try:
        out = train_py(*TINY, f"tracking.uri=sqlite:///{stores}/mlflow.db", f"hydra.run.dir={tmp_path}/out", unprivileged=True)
        assert_cli_error(out, 2, f"MLflow store {stores}/mlflow.db cannot be created or written", f"make {stores} writable")
        out = train_py(*TINY, "tracking=none", "checkpoint_every=1", f"hydra.run.dir={tmp_path}/out",
                       env={"KDKGE_STATE_DIR": str(states)}, unprivileged=True)
        assert_cli_error(out, 2, f"training states cannot be written to {states} (Permission denied)", "checkpoint_every=0")
    finally:
        stores.chmod(0o755)
        states.chmod(0o755)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_training_state_is_refused_by_train_py(hydra_conf, tmp_path, monkeypatch):
    from kdkge.tracking import resolve_tracking_uri

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)  # creating a store logs a line of MLflow's: not part of this test
    monkeypatch.setenv("KDKGE_STATE_DIR", str(tmp_path / "states"))
    digest = app.config_hash(cfg_of(*TINY))
    path = app.training_state_path(digest, f"{resolve_tracking_uri(uri)}#kdkge-nations")  # where train.py will look
    path.parent.mkdir()
    marker = tmp_path / "ran"
    torch.save({"epoch": 1, "payload": _RunsCode(marker)}, path)
    out = train_py(*TINY, "checkpoint_every=1", f"hydra.run.dir={tmp_path}/out",
                   env={"KDKGE_STATE_DIR": str(tmp_path / "states"), "MLFLOW_TRACKING_URI": uri})
    assert_cli_error(out, 2, f"refused to load the training state {path}", "posix.system", "resume=false")
    assert not marker.exists() and path.exists()
    assert len(find_runs(uri, "kdkge-nations")) == 0  # nothing was started
