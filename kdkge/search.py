"""Hyperparameter search beyond the grid: Optuna, maximising validation MRR (never test).

    python -m kdkge.search --space searches/umls_kd_distmult.yaml --trials 20   # or --space umls_kd_distmult
    make search SPACE=umls_kd_distmult TRIALS=20

A search space file (``searches/<name>.yaml``, apart from the grid sweeps in ``sweeps/``) names
the study, its storage, fixed ``train.py`` overrides and the searched parameters (embedding size
as a square k², lr, batch size, calibration and its α, ...).  Each trial composes ``conf/train.yaml`` with Hydra's compose
API and trains through :func:`kdkge.app.train`, so it is an ordinary MLflow run (tags
``optuna_study``, ``optuna_trial``; a configuration that MLflow already holds as FINISHED is
reused, not retrained).  The objective is the space's ``metric`` — a validation metric; test
metrics are refused.  Every ``eval_every`` epochs the validation MRR is reported to Optuna, whose
pruner may stop the trial (the MLflow run then ends FAILED with tag ``optuna_state=PRUNED``).

The study lives in SQLite (default ``optuna.db`` in the repository root, gitignored) and is
loaded if it exists: re-running the command adds ``--trials`` more trials to the same study.
Trials of a killed process are marked failed after a heartbeat grace period and retried once; a
sampler seed is offset by the number of trials already in the study (no repeated draws on resume).

Search space file::

    study: umls_kd_distmult           # Optuna study name (MLflow tag optuna_study)
    storage: sqlite:///optuna.db      # relative SQLite paths: relative to the repository root
    metric: valid_mrr                 # maximised; must be a validation metric
    overrides: [model=kd_distmult, dataset=umls, epochs=300, eval_every=25]
    space:
      dim: {type: square, low: 4, high: 30}             # d = k², k ∈ [4, 30] (Optuna param sqrt_dim)
      lr: {type: float, low: 0.001, high: 0.1, log: true}
      batch_size: {type: categorical, choices: [256, 512, 1024]}
      calibration: {type: categorical, choices: [none, ls, lr]}
      calibration.alpha: {type: float, low: 0.05, high: 0.3, when: {calibration: [ls, lr]}}
    sampler: {type: tpe, seed: 1}     # tpe | random (+ their arguments)
    pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 50}  # median | percentile | threshold | hyperband | nop
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from .config import CONF_DIR
from .paths import REPO_ROOT, SEARCHES_DIR, experiment_name

DEFAULT_STORAGE = "sqlite:///optuna.db"


class SearchSpaceError(ValueError):
    """A search space file that cannot run."""


def resolve_storage(url: str) -> str:
    """A relative SQLite path is taken relative to the repository root."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = Path(url[len("sqlite:///"):])
        if not path.is_absolute():
            return f"sqlite:///{(REPO_ROOT / path).resolve()}"
    return url


def space_path(space: str | Path) -> Path:
    """The file of ``space``: a path, or a bare name ``<name>`` for ``searches/<name>.yaml``."""
    path = Path(space)
    if path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        return SEARCHES_DIR / f"{path}.yaml"
    if not path.is_file() and path.parent.name == "sweeps" and path.name.startswith("search_"):
        raise SearchSpaceError(f"search spaces live in {SEARCHES_DIR.name}/ now, without the search_ prefix: "
                               f"--space {SEARCHES_DIR.name}/{path.name.removeprefix('search_')}")
    return path


def load_space(path: str | Path) -> dict:
    """The search space file (a path, or a name in ``searches/``) as a plain dict, checked."""
    path = space_path(path)
    if not path.is_file():
        raise SearchSpaceError(f"search space file {path} does not exist")
    space = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in ("study", "space"):
        if key not in space:
            raise SearchSpaceError(f"{path}: missing key {key!r}")
    space.setdefault("storage", DEFAULT_STORAGE)
    space.setdefault("metric", "valid_mrr")
    space.setdefault("overrides", [])
    if not str(space["metric"]).startswith("valid_"):
        raise SearchSpaceError(f"{path}: metric={space['metric']!r}: the search maximises a validation metric "
                               "(valid_mrr, valid_hits_10, ...), never a test metric")
    for name, spec in space["space"].items():
        if spec.get("type") not in ("square", "int", "float", "categorical"):
            raise SearchSpaceError(f"{path}: space.{name}.type must be square, int, float or categorical")
    return space


def suggest(trial, name: str, spec: Mapping[str, Any]) -> Any:
    """One value of the parameter ``name`` (``type: square`` suggests k and returns k²)."""
    kind = spec["type"]
    if kind == "square":
        k = trial.suggest_int(f"sqrt_{name}", int(spec["low"]), int(spec["high"]))
        return k * k
    if kind == "int":
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step", 1)),
                                 log=bool(spec.get("log", False)))
    if kind == "float":
        return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log", False)))
    return trial.suggest_categorical(name, list(spec["choices"]))


def trial_overrides(trial, space: Mapping[str, Any]) -> list[str]:
    """The fixed overrides plus one sampled ``key=value`` per active parameter (``when`` conditions)."""
    values: dict[str, Any] = {}
    overrides = [str(o) for o in space.get("overrides", [])]
    for name, spec in space["space"].items():
        when = spec.get("when") or {}
        if any(values.get(k) not in list(v) for k, v in when.items()):
            continue
        values[name] = suggest(trial, name, spec)
        overrides.append(f"{name}={values[name]}")
    return overrides


def _build(kind_spec: Mapping[str, Any] | None, table: Mapping[str, Any], default: str):
    spec = dict(kind_spec or {"type": default})
    kind = spec.pop("type", default)
    if kind not in table:
        raise SearchSpaceError(f"unknown type {kind!r}: use one of {', '.join(table)}")
    return table[kind](**spec)


def make_sampler(spec, offset: int = 0):
    """The sampler; a ``seed`` is offset by ``offset`` (the trials already in the study), so that a
    resumed study does not draw its first trials again."""
    import optuna

    spec = dict(spec or {"type": "tpe"})
    if spec.get("seed") is not None:
        spec["seed"] = int(spec["seed"]) + offset
    return _build(spec, {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}, "tpe")


def make_pruner(spec):
    import optuna

    return _build(spec, {
        "median": optuna.pruners.MedianPruner, "percentile": optuna.pruners.PercentilePruner,
        "threshold": optuna.pruners.ThresholdPruner, "hyperband": optuna.pruners.HyperbandPruner,
        "nop": optuna.pruners.NopPruner,
    }, "median")


def open_study(space: Mapping[str, Any], storage: str | None = None):
    """Create the study or load it (``load_if_exists``); trials of a killed process are retried once."""
    import optuna

    import warnings

    url = resolve_storage(storage or space["storage"])
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(
            url, heartbeat_interval=60, grace_period=180,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    try:
        existing = len(optuna.load_study(study_name=str(space["study"]), storage=rdb).trials)
    except KeyError:
        existing = 0
    return optuna.create_study(
        storage=rdb, study_name=str(space["study"]), direction="maximize", load_if_exists=True,
        sampler=make_sampler(space.get("sampler"), existing), pruner=make_pruner(space.get("pruner")),
    )


def _tag_run(cfg, study_name: str, number: int, state: str) -> str | None:
    """Tag the trial's newest MLflow run with ``optuna_state``; return its id."""
    from . import app

    tracker = app.make_tracker(cfg)
    if not tracker.recording:
        return None
    run = tracker.store.newest_run(
        tracker.experiment_name, f"tags.optuna_study = '{study_name}' and tags.optuna_trial = '{number}'")
    if run is None:
        return None
    tracker.set_run_tag(run.info.run_id, "optuna_state", state)
    return run.info.run_id


def _experiment_of(cfg) -> str:
    from . import app

    return str(cfg.tracking.experiment or experiment_name(app.dataset_name(cfg)))


def make_objective(space: Mapping[str, Any], extra_overrides: Sequence[str] = (), parent=None):
    """The Optuna objective: compose, train through :func:`kdkge.app.train`, return the validation metric.

    With ``parent`` (a :class:`kdkge.parent_runs.ParentRun`) each trial's run in the parent's
    experiment is nested under it (tag ``mlflow.parentRunId``).
    """
    import optuna
    from hydra import compose

    from . import app

    metric, study_name = str(space["metric"]), str(space["study"])

    def objective(trial: optuna.Trial) -> float:
        overrides = trial_overrides(trial, space) + list(extra_overrides)
        cfg = compose("train", overrides=overrides)
        trial.set_user_attr("overrides", " ".join(overrides))
        trial.set_user_attr("config_hash", app.config_hash(cfg))
        epochs = int(cfg.epochs)

        def on_eval(epoch: int, metrics: dict[str, float]) -> None:
            if metric not in metrics or epoch >= epochs:
                return  # the final evaluation is the objective itself
            trial.report(metrics[metric], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}: {metric} = {metrics[metric]:.4f}")

        tags = {"optuna_study": study_name, "optuna_trial": str(trial.number)}
        if parent is not None and cfg.tracking.enabled and _experiment_of(cfg) == parent.experiment:
            tags["mlflow.parentRunId"] = parent.run_id
        try:
            metrics = app.train(cfg, overrides=" ".join(overrides), tags=tags, on_eval=on_eval)
        except optuna.TrialPruned:
            run_id = _tag_run(cfg, study_name, trial.number, "PRUNED")
            if run_id:
                trial.set_user_attr("mlflow_run_id", run_id)
            raise
        if metrics.get(app.CLAIMED_ELSEWHERE):  # another process trains this configuration right now (kdkge.claims)
            raise SearchSpaceError("another process is training this configuration for the same store; the trial fails "
                                   "(re-run the search later to reuse its result)")
        run_id = _tag_run(cfg, study_name, trial.number, "COMPLETE")
        if run_id is None:  # a FINISHED run of the same config was reused (or tracking is off)
            tracker = app.make_tracker(cfg)
            run_id = tracker.finished_run_with_hash(app.config_hash(cfg))
            trial.set_user_attr("reused_finished_run", True)
        if run_id:
            trial.set_user_attr("mlflow_run_id", run_id)
        if metric not in metrics:
            raise SearchSpaceError(f"the run did not log {metric!r}")
        return float(metrics[metric])

    return objective


def _open_parent(space: Mapping[str, Any], overrides: Sequence[str], storage: str):
    """The study's parent MLflow run (reopened when the study is resumed), or None without tracking."""
    from hydra import compose

    from .parent_runs import ParentRun
    from .tracking import resolve_tracking_uri

    try:
        cfg = compose("train", overrides=[str(o) for o in space.get("overrides", [])] + list(overrides))
        if not cfg.tracking.enabled:
            return None
        params = {name: " ".join(f"{k}={v}" for k, v in spec.items()) for name, spec in space["space"].items()}
        return ParentRun(
            resolve_tracking_uri(cfg.tracking.uri or None), _experiment_of(cfg), kind="optuna_study",
            key={"study": str(space["study"])}, name=f"optuna-{space['study']}",
            tags={"overrides": " ".join([*map(str, space.get("overrides", [])), *overrides]), "metric": str(space["metric"]),
                  "optuna_storage": storage},
            params={f"space.{k}": v for k, v in params.items()},
        )
    except Exception as exc:  # the search runs without a parent rather than not at all
        print(f"warning: no MLflow parent run for the study: {exc}", file=sys.stderr)
        return None


def _close_parent(parent, space: Mapping[str, Any], study, status: str) -> None:
    """Log the trials side by side (children.csv/.md, printed) and the study; end the parent."""
    from .parent_runs import child_rows, log_children, log_json, varying_keys

    try:
        fixed = len(space.get("overrides", []))
        entries = [{"index": t.number, "name": f"trial {t.number}", "status": t.state.name.lower(),
                    "run_id": t.user_attrs.get("mlflow_run_id"),
                    "overrides": t.user_attrs.get("overrides", "").split()[fixed:]} for t in study.trials]
        keys = varying_keys([e["overrides"] for e in entries])
        text = log_children(parent, child_rows(parent, entries, keys), keys)
        try:
            best = {"number": study.best_trial.number, "value": study.best_value, "params": study.best_trial.params,
                    "mlflow_run_id": study.best_trial.user_attrs.get("mlflow_run_id")}
        except ValueError:
            best = None
        log_json(parent, {"study": study.study_name, "metric": space["metric"], "trials": len(study.trials),
                          "best": best, "space": space}, "study.json")
        print(f"\ntrials of study {study.study_name!r} (MLflow parent run {parent.run_id}; children.csv/.md there):")
        print(text, end="")
    except Exception as exc:
        print(f"warning: could not record the trials in parent run {parent.run_id}: {exc}", file=sys.stderr)
    finally:
        parent.end(status)


def search(space_file: str | Path, trials: int, *, storage: str | None = None, timeout: float | None = None,
           overrides: Sequence[str] = ()):
    """Add ``trials`` trials to the study of ``space_file`` (created or resumed); return the study."""
    import math

    import optuna
    from hydra import initialize_config_dir

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise SearchSpaceError(f"--trials={trials} must be a positive integer (the number of trials to add to the study)")
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise SearchSpaceError(f"--timeout={timeout} must be a positive number of seconds (or left out: no time limit)")
    space = load_space(space_file)
    study = open_study(space, storage)
    before = len(study.trials)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        parent = _open_parent(space, overrides, resolve_storage(storage or space["storage"]))
        status = "FAILED"
        try:
            study.optimize(make_objective(space, overrides, parent), n_trials=trials, timeout=timeout, catch=(Exception,))
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            if parent is not None:
                _close_parent(parent, space, study, status)
    states = {s.name: sum(t.state == s for t in study.trials) for s in optuna.trial.TrialState}
    print(f"\nstudy {study.study_name!r} ({resolve_storage(storage or space['storage'])}): {len(study.trials)} trials "
          f"({len(study.trials) - before} new): " + ", ".join(f"{n.lower()} {c}" for n, c in states.items() if c))
    try:
        best = study.best_trial
        print(f"best: trial {best.number}, {space['metric']} = {best.value:.4f}, "
              + " ".join(best.user_attrs.get("overrides", "").split()[len(space.get('overrides', [])):])
              + (f" (MLflow run {best.user_attrs['mlflow_run_id']})" if best.user_attrs.get("mlflow_run_id") else ""))
    except ValueError:
        print("no completed trial yet")
    return study


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kdkge.search",
        description="Optuna search maximising validation MRR; every trial is an MLflow run (kdkge.app.train). "
                    "Re-running resumes the study.",
    )
    parser.add_argument("--space", required=True, help="search space file, e.g. searches/umls_kd_distmult.yaml, or its name umls_kd_distmult")
    parser.add_argument("--trials", type=int, default=20, help="trials to add to the study (default: 20)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: the file's, else sqlite:///optuna.db)")
    parser.add_argument("--timeout", type=float, default=None, help="stop starting trials after this many seconds")
    parser.add_argument("overrides", nargs="*", help="extra train.py overrides for every trial, e.g. epochs=50 tracking.uri=...")
    args = parser.parse_args(argv)
    try:
        search(args.space, args.trials, storage=args.storage, timeout=args.timeout, overrides=args.overrides)
    except SearchSpaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
