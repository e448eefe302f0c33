"""The kdkge sweeper plugin (``hydra/sweeper=kdkge``, the default of ``conf/train.yaml``).

Hydra's basic sweeper (same ``params``, same expansion) plus what a multirun of ``train.py`` needs
beyond it.  The planning — aliases such as ``dim=range``, grids, composing and checking every run,
stack keys — is :mod:`kdkge.sweeps`; this module drives a sweep with it:

* **Planning in the parent**: every run's config is composed before anything starts; invalid
  configs, duplicates (equal config hash) and runs that MLflow already holds as FINISHED (unless
  ``force=true``) are not launched.  ``hydra.sweeper.dry_run=true`` prints the plan and stops.
* **One sweep id** (tag ``sweep_id``) for all runs of a sweep (:func:`kdkge.sweeps.sweep_id_of`),
  stable across relaunches, so an interrupted sweep relaunched with the same arguments keeps it.
* **Stacking** (``hydra.sweeper.stack=true``, the default): runs that share
  :func:`kdkge.identity.stack_key` are launched as one job (:func:`kdkge.app.run_stacked_job`).
* **Parallel and remote**: the MLflow store is created/upgraded once in the parent
  (:func:`kdkge.tracking.ensure_store`) and the experiments are created there, before any worker
  starts; with ``hydra/launcher=joblib`` each job gets ``threads = max(1, cores // parallel
  jobs)`` unless ``threads`` is given; launchers that run jobs elsewhere (SLURM, Ray) need a
  shared tracking server (``MLFLOW_TRACKING_URI=http://...``), whose URI is passed to every job.
* **Errors do not stop the sweep**; at the end a summary (:mod:`.reporting`) lists finished /
  skipped / failed runs with reasons and is written to ``<sweep dir>/sweep_summary.json``.

Hydra instantiates sweepers only from the ``hydra_plugins`` package; the sweep files come from
the config source of :mod:`.sweeps_source`, and the typed parameters are :mod:`.config`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from kdkge.interrupts import caused_by_signal
from kdkge.store import RunStore
from kdkge.sweeps import (SWEEP_GROUP, SWEEP_ID_KEY, LaunchUnit, Planner, PlannedRun, expand, key_of, launch_units,
                          one_line, plan_runs, sweep_id_of)

from . import reporting

log = logging.getLogger(__name__)


class SweepError(CompactHydraException):
    """A sweep that cannot start; Hydra prints the message alone (no traceback) and exits 1."""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: Hydra launcher plugins by module, and what to install for each (the message when it is missing).
LAUNCHER_PACKAGES = {
    "hydra_plugins.hydra_ray_launcher": "pip install hydra-ray-launcher==1.2.2 in the Ray cluster's environment "
                                        "(it pulls ray and boto3 and needs cloudpickle<3, so it is not one of kdkge's extras)",
    "hydra_plugins.hydra_submitit_launcher": "pip install -e '.[cluster]' (hydra-submitit-launcher==1.2.0)",
    "hydra_plugins.hydra_joblib_launcher": "pip install hydra-joblib-launcher==1.2.0",
}


def missing_launcher(target: str) -> str | None:
    """A one-line message naming the package to install if the launcher class ``target`` cannot be
    imported, else None (the launcher exists and failed for another reason)."""
    import importlib.util

    module = target.rpartition(".")[0]
    try:
        if module and importlib.util.find_spec(module) is not None:
            return None
    except (ImportError, ValueError):
        pass
    plugin = next((p for p in LAUNCHER_PACKAGES if module.startswith(p)), None)
    how = LAUNCHER_PACKAGES[plugin] if plugin else f"install the Hydra plugin that provides {module or target!r}"
    return f"the launcher {target} is not installed: {how}"


class KdkgeSweeper(Sweeper):
    """Hydra's basic sweeper plus aliases, grids, planning, skip-finished, stacking, dry run, summary.

    Parameters (``hydra.sweeper.*``, typed in :class:`.config.KdkgeSweeperConf`, defaults and
    documentation in ``conf/hydra/sweeper/kdkge.yaml``):

    :param params: ``{key: "v1,v2"}`` swept as a cartesian product (as the basic sweeper).
    :param grids: list of such mappings; the sweep is the union of their products (with ``params``
        and the command line applied to each).
    :param dry_run: print the runs (and what would be skipped or stacked) and launch nothing.
    :param stack: launch runs that share a stack key as one stacked job.
    :param skip_finished: do not launch runs that MLflow already holds as FINISHED (the app would
        skip them anyway; this saves starting a job for each).
    :param max_batch_size: launch at most this many jobs per launcher call (as the basic sweeper).
    """

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict] = None,
                 grids: Optional[list] = None, dry_run: bool = False, stack: bool = True,
                 skip_finished: bool = True) -> None:
        # No super().__init__(): Hydra's plugin scan re-executes this module, after which a
        # super() of a class imported before the scan no longer matches.
        self.max_batch_size = max_batch_size
        self.params = dict(params) if params else {}
        self.grids = [dict(g) for g in grids] if grids else []
        self.hydra_context = self.config = self.launcher = None
        self.dry_run, self.stacking, self.skip_finished = bool(dry_run), bool(stack), bool(skip_finished)
        self.launcher_missing: str | None = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher_missing = None
        try:
            self.launcher = Plugins.instance().instantiate_launcher(
                hydra_context=hydra_context, task_function=task_function, config=config
            )
        except Exception:
            target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
            message = missing_launcher(target)
            if message is None:
                raise
            if not self.dry_run:
                raise SweepError(f"error: {message}") from None
            self.launcher_missing = message  # a dry run plans without a launcher

    # -- helpers ----------------------------------------------------------- #

    def _sweep_name(self) -> str:
        choices = OmegaConf.select(self.config, "hydra.runtime.choices", default=None) or {}
        return str(choices.get(SWEEP_GROUP) or "multirun")

    def _launcher_kind(self) -> str:
        target = str(OmegaConf.select(self.config, "hydra.launcher._target_", default="") or "")
        if target.endswith("BasicLauncher"):
            return "basic"
        if "joblib" in target.lower():
            return "joblib"
        return "remote"

    def _units(self, pending: list[PlannedRun], extra: list[str]) -> list[LaunchUnit]:
        return launch_units(pending, extra, self.stacking)

    # -- the sweep --------------------------------------------------------- #

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None
        assert self.launcher is not None or self.dry_run

        started_ms = int(time.time() * 1000)
        runs = plan_runs(Planner(self.hydra_context.config_loader, self.config), expand(self.params, self.grids, arguments))
        name = self._sweep_name()
        # one sweep id for all runs (a sweep_id=... given by the user wins)
        given = [o.split("=", 1)[1] for r in runs for o in r.overrides if key_of(o) == SWEEP_ID_KEY]
        sweep_id = given[0] if given else sweep_id_of(name, runs)
        extra = [] if given else [f"{SWEEP_ID_KEY}={sweep_id}"]
        kind = self._launcher_kind()
        extra += self._remote_store(runs, kind)
        lookup_error = self._mark_finished(runs)
        pending = [r for r in runs if r.status == "pending" and not r.error and not (self.skip_finished and r.done_run)]
        units = self._units(pending, extra)
        threads = self._threads(units, kind)
        reporting.print_plan(self.dry_run, self.skip_finished, name, sweep_id, runs, units, kind, threads, lookup_error)
        if self.dry_run:
            if self.launcher_missing:
                print(f"note: {self.launcher_missing}")
            print("dry run: nothing was launched (drop hydra.sweeper.dry_run=true, or DRY=1, to run it)")
            return []
        return self._launch(name, sweep_id, runs, units, arguments, kind, started_ms)

    def _remote_store(self, runs: list[PlannedRun], kind: str) -> list[str]:
        """A launcher on other machines needs a shared tracking server, whose URI every job gets."""
        if kind != "remote":
            return []
        stores = sorted({r.tracking[0] for r in runs if r.tracking})
        local = [u for u in stores if not u.startswith(("http://", "https://", "databricks"))]
        if local and not self.dry_run:
            raise SweepError(
                f"error: launcher {OmegaConf.select(self.config, 'hydra.launcher._target_')} runs jobs on other machines, "
                f"but the MLflow store is {local[0]}: start a shared tracking server (mlflow server ...) and set "
                "MLFLOW_TRACKING_URI=http://<host>:<port> (or tracking.uri=...)"
            )
        if len(stores) == 1 and not any(key_of(o) == "tracking.uri" for r in runs for o in r.overrides):
            return [f"tracking.uri='{stores[0]}'"]  # the jobs' environment may lack MLFLOW_TRACKING_URI
        return []

    def _mark_finished(self, runs: list[PlannedRun]) -> str | None:
        """Set ``done_run`` of the runs MLflow already holds as FINISHED; the look-up error of a dry run, if any."""
        lookup_error = None
        done: dict[tuple[str, str], dict[str, str]] = {}
        for key in sorted({r.tracking for r in runs if r.tracking}):
            try:
                if not self.dry_run:
                    from kdkge.tracking import ensure_store

                    ensure_store(key[0])
                done[key] = RunStore(key[0]).finished_runs(key[1])  # {} for a store not created yet
            except Exception as exc:
                if not self.dry_run:
                    raise SweepError(f"error: MLflow store {key[0]}: {one_line(exc)}") from exc
                lookup_error = one_line(exc)
                done[key] = {}
        for r in runs:
            if r.digest and r.tracking and r.status == "pending" and not r.force:
                r.done_run = done.get(r.tracking, {}).get(r.digest)
        return lookup_error

    def _threads(self, units: list[LaunchUnit], kind: str) -> int | None:
        """Threads per job for parallel (joblib) or remote jobs, added to every job that does not set them."""
        threads = None
        if kind == "joblib":
            n_jobs = int(OmegaConf.select(self.config, "hydra.launcher.n_jobs", default=-1) or -1)
            parallel = _cores() if n_jobs < 1 else min(n_jobs, max(1, len(units)))
            threads = max(1, _cores() // max(1, parallel))
        elif kind == "remote":  # the cores the launcher reserves per job (SLURM, Ray)
            cores = (OmegaConf.select(self.config, "hydra.launcher.cpus_per_task", default=None)
                     or OmegaConf.select(self.config, "hydra.launcher.ray.remote.num_cpus", default=None))
            threads = int(cores) if cores else None
        if threads:
            for u in units:
                if not any(key_of(o) == "threads" for o in u.overrides):
                    u.overrides.append(f"threads={threads}")
        return threads

    def _launch(self, name, sweep_id, runs, units, arguments, kind, started_ms) -> list:
        """Create the experiments, open the parent runs, launch the jobs in batches; summarise whatever happens."""
        from kdkge.tracking import MlflowTracker

        trained = {i for u in units for i in u.members}
        for key in sorted({r.tracking for r in runs if r.tracking and r.index in trained}):
            MlflowTracker(key[0], experiment=key[1])  # the store(s) and experiments exist before any worker starts
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        parents = reporting.open_parents(self.skip_finished, name, sweep_id, runs, units, arguments, kind, sweep_dir)
        returns = []
        interrupted = failure = None
        try:
            batch_size = self.max_batch_size or len(units) or 1
            for start in range(0, len(units), batch_size):
                batch = units[start:start + batch_size]
                results = self.launcher.launch([u.overrides for u in batch], initial_job_idx=start)
                for unit, result in zip(batch, results):
                    unit.result = result
                returns.append(results)
        except (KeyboardInterrupt, SystemExit) as exc:
            interrupted = exc
        except BaseException as exc:
            if not caused_by_signal(exc):  # a Ctrl-C inside Hydra's composition can surface as another error
                failure = exc
                raise
            interrupted = KeyboardInterrupt(f"interrupted (surfaced as {type(exc).__name__}: {exc})")
            interrupted.__cause__ = exc
        finally:
            summary = reporting.summarise(self.skip_finished, runs, units, sweep_id, started_ms, interrupted is not None)
            reporting.print_summary(name, sweep_id, runs, summary, sweep_dir, interrupted is not None)
            (sweep_dir / "sweep_summary.json").write_text(json.dumps(summary, indent=2))
            reporting.close_parents(parents, runs, summary, "KILLED" if interrupted else "FAILED" if failure else "FINISHED")
        if interrupted is not None:
            raise interrupted
        return returns
