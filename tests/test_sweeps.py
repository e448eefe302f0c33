"""The sweep layer (issue 4 + stacked sweeps of issue 5): aliases, sweep files, dry run, resume,
parallel jobs, stacking, cluster launcher configs, error summary, Optuna search."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import kdkge.app as app
from kdkge import sweeps
from kdkge.config import CONF_DIR
from kdkge.parent_runs import without_parents
from kdkge.tracking import ensure_store, find_runs


ROOT = CONF_DIR.parent
SWEEPS = ROOT / "sweeps"
PAPER_TEXT = ROOT.parent / "shared" / "paper" / "kronecker-decomposition-kge.md"
TINY = ["dataset=nations", "threads=1", "progress=false", "checkpoint=false"]
CALIBRATIONS = "calibration=none,ls_0.1,ls_0.2,lr_0.1,lr_0.2"


def run_env(store: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("HYDRA_FULL_ERROR", None)
    if store:
        env["MLFLOW_TRACKING_URI"] = store
    return env


def train_py(*args: str, store: str | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=run_env(store),
                          capture_output=True, text=True, timeout=timeout)


def summary_of(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep_summary.json").read_text())




# --------------------------------------------------------------------------- #
# grids: aliases, expansion, sweep files
# --------------------------------------------------------------------------- #


def test_size_aliases():
    assert sweeps.RANGE_SIZES == tuple(k * k for k in range(1, 101))
    assert len(sweeps.RANGE_SIZES) == 100 and sweeps.RANGE_SIZES[-1] == 10_000
    paper = sweeps.PAPER_SIZES
    assert len(paper) == 98 and paper[0] == 4 and paper[-1] == 10_000  # as printed: starts at 4 ...
    assert 256 not in paper and 1 not in paper  # ... and lacks 16² = 256
    assert set(paper) == set(sweeps.RANGE_SIZES) - {1, 256} and list(paper) == sorted(paper)
    assert sweeps.TABLE_SIZES == (4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144, 169, 196, 225, 256, 289, 324, 361, 400)
    assert sweeps.rewrite_aliases(["dim=range", "+x=1", "dim=289"])[0] == "dim=" + ",".join(map(str, sweeps.RANGE_SIZES))
    assert sweeps.rewrite_aliases(["dim=289", "model=range"]) == ["dim=289", "model=range"]


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason="the paper's text is not in shared/paper")
def test_paper_sizes_are_the_printed_list():
    text = PAPER_TEXT.read_text()
    printed = re.search(r"sizes in\s+\$\\\{([\d,\s]+)\\\}\$", text).group(1)
    assert sweeps.PAPER_SIZES == tuple(int(v) for v in printed.split(","))


def test_expand_params_grids_and_arguments():
    jobs = sweeps.expand({"model": "distmult,kd_distmult", "dim": [4, 9]}, None, ["epochs=2"])
    assert jobs == [[f"model={m}", f"dim={d}", "epochs=2"] for m in ("distmult", "kd_distmult") for d in (4, 9)]
    # grids: a union; params and the command line apply to every grid; the command line wins per key
    jobs = sweeps.expand({"noise_ratio": 0.0}, [{"dataset": "umls", "dim": 289}, {"dataset": "kinship", "dim": "4,9"}],
                         ["dataset=nations"])
    assert jobs == [["noise_ratio=0.0", "dataset=nations", "dim=289"], ["noise_ratio=0.0", "dataset=nations", "dim=4"],
                    ["noise_ratio=0.0", "dataset=nations", "dim=9"]]
    assert len(sweeps.expand(None, None, ["dim=tables", "model=a,b"])) == 38


def _sweep_file(name: str):
    cfg = OmegaConf.load(SWEEPS / f"{name}.yaml")
    return cfg.hydra.sweeper.get("params"), cfg.hydra.sweeper.get("grids")


def _paper_cells() -> dict[int, set]:
    """(dataset, model, calibration option, noise, dim) of every row of the paper's Tables 2–6."""
    models = {"DistMult": "distmult", "KD-Rel-DistMult": "kd_rel_distmult", "KD-DistMult": "kd_distmult"}
    cells: dict[int, set] = {}
    for row in csv.DictReader(open(ROOT / "kdkge" / "paper" / "paper_tables.csv")):
        if row["calibration"] == "avg":
            continue
        option = "none" if row["calibration"] == "none" else f"{row['calibration'].lower()}_{float(row['alpha']):g}"
        cells.setdefault(int(row["table"]), set()).add(
            (row["dataset"].lower(), models[row["model"]], option, float(row["noise"]), int(row["dim"])))
    return cells


def _planned(name: str):
    """Compose every run of a sweep file in process (the sweeper's planner) → planned runs."""
    params, grids = _sweep_file(name)
    jobs = sweeps.expand(OmegaConf.to_container(params), OmegaConf.to_container(grids) if grids else None,
                         [f"+sweep={name}"])
    master = compose("train", overrides=[f"+sweep={name}"], return_hydra_config=True)
    planner = sweeps.Planner(GlobalHydra.instance().config_loader(), master)
    return sweeps.plan_runs(planner, jobs)


@pytest.mark.parametrize("name,count", [("table2", 6), ("table3", 30), ("table4", 66), ("table5", 60), ("table6", 54),
                                        ("paper", 204)])
def test_sweep_files_launch_the_documented_runs(hydra_conf, name, count):
    text = (SWEEPS / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_")
    assert f"{count} runs" in text  # the file says how many runs it launches
    assert f"make sweep SWEEP={name}" in text
    runs = _planned(name)
    valid = [r for r in runs if r.status != "duplicate"]
    assert not [r.error for r in runs if r.error]
    assert len(valid) == count
    cells = {(r.overrides_dataset, r.model, r.calibration, r.noise, r.dim) for r in map(_cell, valid)}
    assert len(cells) == count
    paper = _paper_cells()
    if name == "paper":
        assert cells == set().union(*paper.values()) | _kd_lr_extras(paper)
    elif name == "table3":  # the paper prints no LR rows for KD-DistMult; the sweep runs them in the stacked job
        assert cells == paper[3] | _kd_lr_extras(paper)
    else:
        assert cells == paper[int(name[-1])]


def _kd_lr_extras(paper) -> set:
    return {(d, "kd_distmult", f"lr_{a}", 0.0, dim) for (d, m, c, _, dim) in paper[3] if m == "kd_distmult"
            for a in ("0.1", "0.2")}


class _cell:
    def __init__(self, run):
        o = dict(x.lstrip("+").split("=", 1) for x in run.overrides)
        self.overrides_dataset, self.model, self.calibration = o["dataset"], o["model"], o["calibration"]
        self.noise, self.dim = float(o["noise_ratio"]), int(o["dim"])


def test_planner_parses_each_line_once_and_composes_as_hydra(hydra_conf):
    """The planner caches Hydra's parse per override line: a repeated line is the same parsed object,
    the composed config equals Hydra's own composition, and a bad line raises Hydra's error every time."""
    from hydra.errors import OverrideParseException

    master = compose("train", overrides=[], return_hydra_config=True)
    planner = sweeps.Planner(GlobalHydra.instance().config_loader(), master)
    first = planner._parse(["model=kd_distmult", "dim=256", "seed=3"])
    again = planner._parse(["seed=3", "model=kd_distmult"])
    assert again[0] is first[2] and again[1] is first[0]
    for overrides in (["model=kd_distmult", "dim=256", "seed=3"], ["model=distmult", "dim=16", "seed=3"]):
        ours = OmegaConf.to_container(planner.compose(overrides))
        theirs = OmegaConf.to_container(compose("train", overrides=overrides))
        assert ours == theirs
    for _ in range(2):
        with pytest.raises(OverrideParseException):
            planner._parse(["dim=[1,"])


def test_model_build_check_is_cached_and_still_refuses_every_time():
    from kdkge.models import _STORED_WIDTH, check_builds

    assert check_builds("kd_distmult", 256) == 16
    cached = len(_STORED_WIDTH)
    assert check_builds("kd_distmult", 256) == 16 and check_builds("distmult", 10_000) == 10_000
    assert len(_STORED_WIDTH) <= cached + 1
    for _ in range(2):  # a failure is not cached as a success
        with pytest.raises(ValueError, match="not a perfect square"):
            check_builds("kd_distmult", 10)


def test_table3_stacks_its_calibrations(hydra_conf):
    runs = _planned("table3")
    keys = {r.stack_key for r in runs}
    assert len(keys) == 6  # one stacked job per model and dataset
    units = sweeps.launch_units(runs, ["sweep_id=x"], stacking=True)
    assert [len(u.members) for u in units] == [5] * 6
    member = [o for o in units[0].overrides if o.startswith("stack=")][0]
    assert member.startswith("stack=[['calibration=none'],['calibration=ls_0.1']")
    assert len(sweeps.launch_units(runs, [], stacking=False)) == 30


def test_dim_range_dry_run_lists_100_runs(tmp_path):
    """The user's command: ``python train.py -m model=kd_distmult dim=range`` (here as a dry run)."""
    out = train_py("-m", "model=kd_distmult", "dim=range", "hydra.sweeper.dry_run=true",
                   f"hydra.sweep.dir={tmp_path / 'multirun'}", store=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert out.returncode == 0, out.stderr[-3000:]
    sizes = [int(d) for d in re.findall(r"^\s+#\d+\s+kd_distmult-umls-d(\d+)\s", out.stdout, re.M)]
    assert sizes == [k * k for k in range(1, 101)]
    assert re.search(r"sweep multirun-[0-9a-f]{8}: 100 runs: 100 to train in 100 jobs", out.stdout)
    assert "dry run: nothing was launched" in out.stdout
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "mlflow.db").exists()


def test_make_sweep_dry_and_jobs():
    out = subprocess.run(["make", "-n", "sweep", "SWEEP=table4", "DRY=1", "JOBS=2"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    command = " ".join(out.stdout.split())
    assert "train.py -m +sweep=table4 hydra.sweeper.dry_run=true" in command
    assert "hydra/launcher=joblib hydra.launcher.n_jobs=2" in command


def test_range_and_sweep_files_need_m(tmp_path):
    for args, message in ((["dim=range"], "error: dim=range is a sweep: add -m"),
                          (["+sweep=table4"], "error: +sweep=table4 is a sweep: add -m")):
        out = train_py(*args, f"hydra.run.dir={tmp_path}", "tracking=none")
        assert out.returncode == 2 and message in out.stderr, out.stderr[-2000:]


# --------------------------------------------------------------------------- #
# running many runs safely
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_errors_do_not_stop_the_sweep_and_the_summary_says_why(tmp_path):
    bad = tmp_path / "broken"
    bad.mkdir()
    for split in ("train", "valid", "test"):
        (bad / f"{split}.txt").write_text("a\tr\tb\nonly-two\tcolumns\n")
    nations = ROOT / "data" / "nations"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = train_py("-m", *TINY, "model=kd_distmult", "epochs=1", "eval_every=0", "dataset=custom",
                   f"dataset.path={nations},{bad}", "dim=4,5", f"hydra.sweep.dir={tmp_path / 'm'}", store=store)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = summary_of(tmp_path / "m")
    assert summary["counts"] == {"finished": 1, "skipped": 0, "failed": 3, "duplicate": 0}
    reasons = {r["name"]: r["reason"] for r in summary["runs"]}
    assert "not a perfect square" in reasons["kd_distmult-nations-d5"]
    assert "broken" in reasons["kd_distmult-broken-d4"] and reasons["kd_distmult-broken-d4"]
    assert "failed #" in out.stdout and "1 finished, 0 skipped (already finished), 3 failed" in out.stdout
    runs = without_parents(find_runs(store, "kdkge-broken"))
    assert list(runs["status"]) == ["FAILED"]  # the data error ended its MLflow run FAILED
    assert list(without_parents(find_runs(store, "kdkge-nations"))["tags.sweep_id"]) == [summary["sweep_id"]]


def _finished_count(db: Path) -> int:
    """FINISHED runs in an MLflow SQLite store, read directly (fast enough to poll)."""
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("select count(*) from runs where status = 'FINISHED'").fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked
        return 0


@pytest.mark.slow
def test_interrupted_sweep_relaunched_runs_only_what_is_missing(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # long enough per run that the Ctrl-C lands mid-sweep even on a loaded machine
    args = ["-m", *TINY, "dim=4,9,16,25", "epochs=500", "eval_every=0"]
    proc = subprocess.Popen([sys.executable, "train.py", *args, f"hydra.sweep.dir={tmp_path / 'first'}"],
                            cwd=ROOT, env=run_env(store), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # CI may run us with SIGINT ignored (a background job); the sweep must see Ctrl-C
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    finished = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        finished = _finished_count(tmp_path / "mlflow.db")
        if finished >= 2:
            proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the sweep
            break
    output, _ = proc.communicate(timeout=120)
    assert finished >= 2, output[-3000:]
    first = summary_of(tmp_path / "first")
    assert first["interrupted"] and first["counts"]["finished"] >= 2, output[-3000:]
    before = without_parents(find_runs(store, "kdkge-nations"))
    done_before = set(before.loc[before["status"] == "FINISHED", "tags.config_hash"])
    assert 2 <= len(done_before) < 4 or proc.returncode == 0

    out = train_py(*args, f"hydra.sweep.dir={tmp_path / 'second'}", store=store)
    assert out.returncode == 0, out.stderr[-3000:]
    second = summary_of(tmp_path / "second")
    assert second["sweep_id"] == first["sweep_id"]  # stable across relaunches
    assert second["counts"]["skipped"] == len(done_before)
    assert second["counts"]["finished"] == 4 - len(done_before) and second["counts"]["failed"] == 0
    assert {r["config_hash"] for r in second["runs"] if r["status"] == "skipped"} == done_before
    runs = without_parents(find_runs(store, "kdkge-nations"))
    finished_runs = runs[runs["status"] == "FINISHED"]
    assert sorted(finished_runs["tags.dim"].astype(int)) == [4, 9, 16, 25]  # exactly one FINISHED run each
    assert finished_runs["tags.config_hash"].is_unique
    assert set(runs["status"]) <= {"FINISHED", "KILLED"}  # the interrupted run, if any, stays KILLED ...
    assert len(runs) == 4 + int((runs["status"] == "KILLED").sum())  # ... and was run again


# A Ctrl-C that lands while Hydra composes the next job's config can leave OmegaConf half done; what
# escapes is then not the KeyboardInterrupt but e.g. this AttributeError (seen once in CI-like runs).
_CTRL_C_INSIDE_HYDRA = """
import runpy, sys
from hydra.core.plugins import Plugins
instantiate, calls = Plugins.instantiate_launcher, []
def instantiate_launcher(self, *args, **kwargs):  # Hydra loads its launchers afresh: wrap the instance
    launcher = instantiate(self, *args, **kwargs)
    real = launcher.launch
    def launch(job_overrides, initial_job_idx):
        calls.append(initial_job_idx)
        if len(calls) == 2:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                None._invalidate_flags_cache()
        return real(job_overrides, initial_job_idx)
    launcher.launch = launch
    return launcher
Plugins.instantiate_launcher = instantiate_launcher
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
"""


def test_ctrl_c_that_surfaces_as_another_error_still_ends_the_sweep_as_interrupted(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["-m", *TINY, "dim=4,9", "epochs=1", "eval_every=0", "hydra.sweeper.max_batch_size=1"]
    out = subprocess.run([sys.executable, "-c", _CTRL_C_INSIDE_HYDRA, *args, f"hydra.sweep.dir={tmp_path / 'first'}"],
                         cwd=ROOT, env=run_env(store), capture_output=True, text=True, timeout=300)
    first = summary_of(tmp_path / "first")
    assert first["interrupted"], out.stdout[-2000:] + out.stderr[-2000:]
    assert first["counts"]["finished"] == 1 and out.returncode != 0
    assert "_invalidate_flags_cache" not in json.dumps(first)  # not reported as the sweep's error
    runs = without_parents(find_runs(store, "kdkge-nations"))
    assert list(runs["status"]) == ["FINISHED"]
    assert find_runs(store, "kdkge-nations")["status"].isin(["FINISHED", "KILLED"]).all()  # the parent run is closed
    # (that a relaunch then trains only what is missing: test_interrupted_sweep_relaunched_runs_only_what_is_missing)


@pytest.mark.slow
def test_four_parallel_joblib_runs_on_a_fresh_store(tmp_path):
    store_file = tmp_path / "fresh" / "mlflow.db"
    store = f"sqlite:///{store_file}"
    assert not store_file.exists()
    no_threads = [o for o in TINY if not o.startswith("threads=")]  # the sweeper sets threads per job
    out = train_py("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", *no_threads, "dim=4,9,16,25",
                   "epochs=1", "eval_every=0", f"hydra.sweep.dir={tmp_path / 'm'}", store=store)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "alembic" not in out.stderr.lower() and "Traceback" not in out.stderr
    runs = without_parents(find_runs(store, "kdkge-nations"))
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    assert set(runs["params.threads"]) == {"1"}  # 2 cores // 4 jobs → 1 thread per job
    assert summary_of(tmp_path / "m")["counts"]["finished"] == 4


# --------------------------------------------------------------------------- #
# stacking (issue 5): one batched model per group, one MLflow run per configuration
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_stacked_sweep_equals_separate_runs(tmp_path, hydra_conf):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # float64: stacked and separate runs take other kernels, whose float32 rounding differs (~1e-5)
    common = [*TINY, "dim=4", "epochs=2", "eval_every=1", "dtype=float64"]
    dry = train_py("-m", *common, CALIBRATIONS, "hydra.sweeper.dry_run=true", store=store)
    assert "5 runs: 5 to train in 1 job (1 of them stacked, holding 5 runs)" in dry.stdout, dry.stdout[-2000:]
    out = train_py("-m", *common, CALIBRATIONS, f"hydra.sweep.dir={tmp_path / 'm'}", store=store)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "stacked job: 5 configurations" in out.stdout
    runs = without_parents(find_runs(store, "kdkge-nations"))
    assert len(runs) == 5 and set(runs["status"]) == {"FINISHED"} and set(runs["tags.stack_size"]) == {"5"}
    assert runs["tags.config_hash"].is_unique and runs["tags.stack_id"].nunique() == 1
    assert set(runs["tags.calibration"]) == {"none", "ls", "lr"} and set(runs["tags.alpha"]) == {"", "0.1", "0.2"}
    for option in CALIBRATIONS.split("=")[1].split(","):
        cfg = compose("train", overrides=[*common, f"calibration={option}", "tracking=none"])
        [row] = [r for _, r in runs.iterrows() if r["tags.config_hash"] == app.config_hash(cfg)]
        assert row["tags.overrides"].endswith(f"calibration={option}")
        separate = app.train(cfg)
        for key in ("train_mrr", "valid_mrr", "test_mrr", "test_hits_10", "num_parameters"):
            assert row[f"metrics.{key}"] == pytest.approx(separate[key], rel=1e-9, abs=1e-12), (option, key)
    # relaunch: all five are skipped per configuration, nothing is trained
    again = train_py("-m", *common, CALIBRATIONS, f"hydra.sweep.dir={tmp_path / 'again'}", store=store)
    assert summary_of(tmp_path / "again")["counts"]["skipped"] == 5
    assert len(without_parents(find_runs(store, "kdkge-nations"))) == 5, again.stdout[-2000:]


def test_train_group_skips_finished_members(tmp_path, hydra_conf, capsys):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(store)
    cfgs = [compose("train", overrides=[*TINY, "dim=4", "epochs=1", "eval_every=0", f"calibration={c}",
                                        f"tracking.uri={store}"]) for c in ("none", "ls_0.1", "lr_0.2")]
    first = app.train(cfgs[0])
    results = app.train_group(cfgs, overrides=["a", "b", "c"])
    assert "skip distmult-nations-d4" in capsys.readouterr().out
    assert results[0]["test_mrr"] == pytest.approx(first["test_mrr"])
    runs = without_parents(find_runs(store, "kdkge-nations"))
    assert len(runs) == 3 and set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["tags.stack_size"].fillna("-")) == ["-", "2", "2"]
    with pytest.raises(app.ConfigError, match="differ in more than calibration"):
        app.train_group([cfgs[0], compose("train", overrides=[*TINY, "dim=9", "tracking=none"])])


# --------------------------------------------------------------------------- #
# cluster launchers (cannot run here: they compose, and the sweeper refuses a local store)
# --------------------------------------------------------------------------- #


def test_cluster_launcher_configs_compose(hydra_conf, monkeypatch):
    monkeypatch.setenv("SLURM_PARTITION", "cpu")
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    slurm = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher
    assert slurm._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert slurm.partition == "cpu" and slurm.cpus_per_task == 2 and slurm.account is None
    ray = compose("train", overrides=["hydra/launcher=ray_cluster"], return_hydra_config=True).hydra.launcher
    assert ray._target_ == "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert ray.ray.init.address == "ray://head:10001" and ray.ray.remote.num_cpus == 2
    try:
        from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    except ImportError:
        pytest.skip("hydra-submitit-launcher is not installed (pip install -e '.[cluster]')")
    assert set(OmegaConf.structured(SlurmQueueConf)) == set(slurm)  # every key of the plugin, no typo


def test_remote_launcher_refuses_a_local_store(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    out = train_py("-m", "+sweep=table2", "hydra/launcher=slurm", f"hydra.sweep.dir={tmp_path}",
                   store=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert out.returncode == 1
    assert "start a shared tracking server" in out.stderr and "MLFLOW_TRACKING_URI=http://" in out.stderr
    assert "Traceback" not in out.stderr


# --------------------------------------------------------------------------- #
# Optuna
# --------------------------------------------------------------------------- #


def _space(tmp_path, **extra) -> Path:
    space = {
        "study": "tiny", "storage": f"sqlite:///{tmp_path / 'optuna.db'}", "metric": "valid_mrr",
        "overrides": [*TINY, "epochs=2", "eval_every=1", f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"],
        "space": {
            "dim": {"type": "square", "low": 2, "high": 4},
            "lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "batch_size": {"type": "categorical", "choices": [512, 1024]},
            "calibration": {"type": "categorical", "choices": ["none", "ls", "lr"]},
            "calibration.alpha": {"type": "float", "low": 0.05, "high": 0.3, "when": {"calibration": ["ls", "lr"]}},
        },
        "sampler": {"type": "tpe", "seed": 1},
        "pruner": {"type": "nop"},
        **extra,
    }
    path = tmp_path / "space.yaml"
    OmegaConf.save(OmegaConf.create(space), path)
    return path


def test_optuna_study_resumes_from_3_to_6_trials(tmp_path):
    import optuna

    from kdkge.search import search

    GlobalHydra.instance().clear()
    path = _space(tmp_path)
    assert len(search(path, 3).trials) == 3
    study = search(path, 3)  # a new process would do the same: load_if_exists
    assert len(study.trials) == 6 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert all(0 < t.value <= 1 for t in study.trials)
    for t in study.trials:
        dim = int(re.search(r"dim=(\d+)", t.user_attrs["overrides"]).group(1))
        assert dim in (4, 9, 16) and ("calibration.alpha" in t.params) == (t.params["calibration"] != "none")
    runs = find_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "kdkge-nations")
    tagged = runs[runs["tags.optuna_study"] == "tiny"]
    assert set(tagged["tags.optuna_trial"]) <= {str(i) for i in range(6)} and len(tagged) >= 5
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} <= set(runs["run_id"])
    # one parent run for the study, reopened when it resumed; the trials' runs are nested under it
    parents = runs[runs["tags.kind"] == "optuna_study"]
    assert len(parents) == 1 and parents.iloc[0]["status"] == "FINISHED"
    assert parents.iloc[0]["tags.study"] == "tiny" and parents.iloc[0]["params.space.lr"].startswith("type=float")
    assert set(tagged["tags.mlflow.parentRunId"]) == {parents.iloc[0]["run_id"]}
    from mlflow.tracking import MlflowClient

    text = open(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").download_artifacts(
        parents.iloc[0]["run_id"], "children.csv", str(tmp_path))).read()
    assert len(text.strip().splitlines()) == 1 + 6


def test_optuna_prunes_on_validation_mrr_and_refuses_test_metrics(tmp_path):
    import optuna

    from kdkge.search import SearchSpaceError, load_space, search

    GlobalHydra.instance().clear()
    path = _space(tmp_path, pruner={"type": "threshold", "lower": 1.01}, study="pruned")
    study = search(path, 1)
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    runs = find_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "kdkge-nations")
    [run] = [r for _, r in without_parents(runs).iterrows()]  # the trial, not the study's parent run
    assert run["status"] == "FAILED" and run["tags.optuna_state"] == "PRUNED" and "TrialPruned" in run["tags.error"]
    with pytest.raises(SearchSpaceError, match="never a test metric"):
        load_space(_space(tmp_path, metric="test_mrr"))
