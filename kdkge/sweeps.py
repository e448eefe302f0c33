"""The sweep layer: many runs in one command, safely (``python train.py -m ...``).

Everything a Hydra multirun of ``train.py`` does beyond Hydra's basic sweeper lives here; the
Hydra plugin class itself (``hydra_plugins/kdkge_sweeper``, selected in ``conf/train.yaml`` by
``override hydra/sweeper: kdkge``) is a one-line subclass of :class:`KdkgeSweeperBase`, because
Hydra instantiates sweepers only from the ``hydra_plugins`` package.

* **Size aliases** (:data:`ALIASES`): under ``-m``, ``dim=range`` is the 100 squares 1², 2², …,
  100²; ``dim=paper`` the list of the paper's Sec. 5.1 exactly as printed; ``dim=tables`` the
  sizes behind Tables 4–6 (2², …, 20²).  A plain ``dim=289`` stays a single size.  Table 3's
  calibration × α axis is ``calibration=none,ls_0.1,ls_0.2,lr_0.1,lr_0.2`` (one option file per
  pair, :data:`PAPER_CALIBRATIONS`).
* **Sweep files** (``sweeps/*.yaml``): Hydra configs of the group ``sweep``
  (``python train.py -m +sweep=table4``) found through the config source
  ``kdkge-sweeps://sweeps`` (:class:`SweepsConfigSource`, listed in ``hydra.searchpath`` of
  ``conf/train.yaml``).  They set ``hydra.sweeper.params`` (a cartesian grid, as Hydra's basic
  sweeper) and optionally ``hydra.sweeper.grids`` (a list of grids whose union is swept; Tables
  2 and 3 use one size per model and dataset).  A YAML list as a value sweeps over its items.
* **Planning in the parent**: every run's config is composed before anything starts; invalid
  configs, duplicates (equal config hash) and runs that MLflow already holds as FINISHED (unless
  ``force=true``) are not launched.  ``hydra.sweeper.dry_run=true`` prints the plan and stops.
* **One sweep id** (tag ``sweep_id``) for all runs of a sweep: ``<sweep name>-<8 hex>``, the
  hex digits a hash of the config hashes of all its runs — stable across relaunches, so an
  interrupted sweep relaunched with the same arguments keeps its id.
* **Stacking** (``hydra.sweeper.stack=true``, the default): runs that share
  :meth:`kdkge.experiment.RunSpec.stack_key` (e.g. Table 3's five calibrations at one size) are
  launched as one job that trains them as one batched model (:func:`kdkge.app.train_group`);
  each configuration is still its own MLflow run.
* **Parallel and remote**: the MLflow store is created/upgraded once in the parent
  (:func:`kdkge.tracking.ensure_store`) and the experiments are created there, before any worker
  starts; with ``hydra/launcher=joblib`` each job gets ``threads = max(1, cores // parallel
  jobs)`` unless ``threads`` is given; launchers that run jobs elsewhere (SLURM, Ray) need a
  shared tracking server (``MLFLOW_TRACKING_URI=http://...``), whose URI is passed to every job.
* **Errors do not stop the sweep**; at the end a summary lists finished / skipped / failed runs
  with reasons (from MLflow, found by the sweep id) and is written to
  ``<sweep dir>/sweep_summary.json``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from .paths import REPO_ROOT

log = logging.getLogger(__name__)

#: The repository root (``sweeps/`` and ``conf/`` live here).

# --------------------------------------------------------------------------- #
# Size and calibration aliases
# --------------------------------------------------------------------------- #

#: ``dim=range``: the 100 squares 1², 2², …, 100² (1 … 10,000).
RANGE_SIZES: tuple[int, ...] = tuple(k * k for k in range(1, 101))

#: ``dim=paper``: the embedding sizes of the paper's Sec. 5.1, exactly as printed.  The printed
#: list starts at 4 (no 1 = 1²) and lacks 256 = 16² (it jumps from 225 to 289), although Table 2
#: reports KD-DistMult with d = 256 — kept as printed: 98 sizes.
PAPER_SIZES: tuple[int, ...] = (
    4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144, 169, 196, 225, 289, 324, 361, 400, 441, 484, 529,
    576, 625, 676, 729, 784, 841, 900, 961, 1024, 1089, 1156, 1225, 1296, 1369, 1444, 1521, 1600,
    1681, 1764, 1849, 1936, 2025, 2116, 2209, 2304, 2401, 2500, 2601, 2704, 2809, 2916, 3025, 3136,
    3249, 3364, 3481, 3600, 3721, 3844, 3969, 4096, 4225, 4356, 4489, 4624, 4761, 4900, 5041, 5184,
    5329, 5476, 5625, 5776, 5929, 6084, 6241, 6400, 6561, 6724, 6889, 7056, 7225, 7396, 7569, 7744,
    7921, 8100, 8281, 8464, 8649, 8836, 9025, 9216, 9409, 9604, 9801, 10000,
)  # fmt: skip

#: ``dim=tables``: the sizes behind Tables 4–6: 4, 9, …, 100 (Table 6) and 121, …, 400 (Table 5;
#: Table 4 uses 100 … 400).
TABLE_SIZES: tuple[int, ...] = tuple(k * k for k in range(2, 21))

#: Table 3's calibration × α axis, one option file per pair (``calibration=none,ls_0.1,...``).
PAPER_CALIBRATIONS: tuple[str, ...] = ("none", "ls_0.1", "ls_0.2", "lr_0.1", "lr_0.2")

#: key → alias word → the values it sweeps (only under ``-m``; a single run rejects the words).
ALIASES: dict[str, dict[str, tuple]] = {
    "dim": {"range": RANGE_SIZES, "paper": PAPER_SIZES, "tables": TABLE_SIZES},
}

class SweepError(CompactHydraException):
    """A sweep that cannot start; Hydra prints the message alone (no traceback) and exits 1."""


#: The config group of the sweep files.
SWEEP_GROUP = "sweep"

#: Config keys the sweeper sets on every job (so a user's value is respected).
SWEEP_ID_KEY = "sweep_id"
STACK_KEY = "stack"
PARENT_KEY = "parent_run"  # MLflow run id of the sweep's parent run in the job's experiment (kdkge.parent_runs)


def _key_of(override: str) -> str:
    """``+sweep=table4`` → ``sweep``; ``dim=4`` → ``dim``."""
    return override.split("=", 1)[0].lstrip("+~")


def rewrite_aliases(overrides: Sequence[str]) -> list[str]:
    """Replace the alias words of :data:`ALIASES` by their comma-separated sweeps.

    ``dim=range`` → ``dim=1,4,9,…,10000``; anything else is returned unchanged.
    """
    out = []
    for text in overrides:
        key, sep, value = text.partition("=")
        words = ALIASES.get(key.lstrip("+"))
        if sep and words and value.strip() in words:
            out.append(f"{key}={','.join(str(v) for v in words[value.strip()])}")
        else:
            out.append(text)
    return out


def _value_text(value: Any) -> str:
    """A YAML value of ``hydra.sweeper.params`` as override text; a list sweeps over its items."""
    if isinstance(value, (list, tuple, ListConfig)):
        return ",".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def expand(params: Mapping[str, Any] | None, grids: Sequence[Mapping[str, Any]] | None,
           arguments: Sequence[str]) -> list[list[str]]:
    """The override list of every job: ``params`` ∪ each grid ∪ ``arguments``, cartesian per grid.

    Later sources win per key (a command-line ``dataset=umls`` restricts every grid to UMLS).
    Aliases (:func:`rewrite_aliases`) are expanded; identical override lists are kept once.
    """
    base = [f"{k}={_value_text(v)}" for k, v in (params or {}).items()]
    grid_lists = [[f"{k}={_value_text(v)}" for k, v in g.items()] for g in (grids or [])] or [[]]
    parser = OverridesParser.create()
    jobs: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for grid in grid_lists:
        per_key: "OrderedDict[str, list[str]]" = OrderedDict()  # as Hydra's basic sweeper: last value per key wins
        for override in parser.parse_overrides(rewrite_aliases([*base, *grid, *arguments])):
            key = override.get_key_element()
            if override.is_sweep_override():
                if not override.is_discrete_sweep():
                    raise ValueError(f"{override.input_line}: only discrete sweeps (a,b,c / choice / range) are supported")
                per_key[key] = [f"{key}={v}" for v in override.sweep_string_iterator()]
            else:
                per_key[key] = [f"{key}={override.get_value_element_as_str()}"]
        for job in itertools.product(*per_key.values()):
            if job not in seen:
                seen.add(job)
                jobs.append(list(job))
    return jobs


# --------------------------------------------------------------------------- #
# sweeps/ as the config group `sweep`
# --------------------------------------------------------------------------- #


class SweepsConfigSource(ConfigSource):
    """Hydra config source ``kdkge-sweeps://<folder>``: ``<folder>/*.yaml`` as options of group ``sweep``.

    A relative folder is taken relative to the repository root, so ``+sweep=table4`` works from
    any working directory.  ``search_*.yaml`` files (Optuna search spaces, read by
    :mod:`kdkge.search`) are not sweep options.  Registered with Hydra by :func:`register_source`
    (called when :mod:`kdkge.config` is imported).
    """

    def __init__(self, provider: str, path: str) -> None:
        if "://" not in path:
            path = f"{self.scheme()}://{path}"
        super().__init__(provider=provider, path=path)
        folder = Path(self.path).expanduser()
        self.folder = folder if folder.is_absolute() else REPO_ROOT / folder

    @staticmethod
    def scheme() -> str:
        return "kdkge-sweeps"

    def _file(self, config_path: str) -> Path | None:
        parts = config_path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != SWEEP_GROUP or parts[1].startswith("search_"):
            return None
        name = parts[1] if parts[1].endswith(".yaml") else parts[1] + ".yaml"
        return self.folder / name

    def available(self) -> bool:
        return self.folder.is_dir()

    def is_group(self, config_path: str) -> bool:
        return config_path.strip("/") in ("", SWEEP_GROUP) and self.available()

    def is_config(self, config_path: str) -> bool:
        path = self._file(config_path)
        return path is not None and path.is_file()

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> list[str]:
        where = config_path.strip("/")
        if not self.available():
            return []
        if where == "" and results_filter in (None, ObjectType.GROUP):
            return [SWEEP_GROUP]
        if where == SWEEP_GROUP and results_filter in (None, ObjectType.CONFIG):
            return sorted(p.stem for p in self.folder.glob("*.yaml") if not p.name.startswith("search_"))
        return []

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._file(config_path)
        if path is None or not path.is_file():
            raise ConfigLoadError(f"Sweep config not found: {path or config_path}")
        text = path.read_text(encoding="utf-8")
        return ConfigResult(
            config=OmegaConf.create(text) if text.strip() else OmegaConf.create(),
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header=ConfigSource._get_header_dict(text[:512]),
        )


def register_source() -> None:
    """Make ``kdkge-sweeps://`` known to Hydra (idempotent)."""
    from hydra.core.plugins import Plugins

    Plugins.instance().register(SweepsConfigSource)


# --------------------------------------------------------------------------- #
# Planning: compose every job's config in the parent
# --------------------------------------------------------------------------- #


@dataclass
class PlannedRun:
    """One configuration of a sweep, composed and checked in the parent before launching."""

    index: int
    overrides: list[str]
    name: str = "?"
    digest: str | None = None  # config hash (None if the config is invalid)
    error: str | None = None  # why the config cannot run (found before launching)
    stack_key: tuple | None = None
    tracking: tuple[str, str] | None = None  # (tracking URI, experiment); None = tracking disabled
    force: bool = False
    duplicate_of: int | None = None
    done_run: str | None = None  # id of a FINISHED run with this hash found before launching
    dim: Any = None
    # filled in after the sweep
    status: str = "pending"  # pending | finished | skipped | failed | duplicate
    reason: str = ""
    run_id: str | None = None


class Planner:
    """Composes job configs fast: one full Hydra composition per distinct set of group choices,
    then the plain ``key=value`` overrides applied the way Hydra applies them."""

    def __init__(self, config_loader, master_config: DictConfig):
        self.loader, self.master = config_loader, master_config
        self.groups = set(config_loader.list_groups("")) | {SWEEP_GROUP}
        self.parser = OverridesParser.create()
        self._cache: dict[tuple[str, ...], DictConfig] = {}

    def _is_group(self, override) -> bool:
        key = override.key_or_group
        return override.package is not None or "/" in key or key in self.groups

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """The task config (without ``hydra``) the job with ``overrides`` will run with."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        parsed = self.parser.parse_overrides(list(overrides))
        group_part = tuple(o.input_line for o in parsed if self._is_group(o))
        values = [o for o in parsed if not self._is_group(o)]
        if group_part not in self._cache:
            full = self.loader.load_sweep_config(self.master, list(group_part))
            self._cache[group_part] = _drop_hydra(full)
        cfg = copy.deepcopy(self._cache[group_part])  # keeps the schema's types and the struct flag
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        return cfg


def _drop_hydra(cfg: DictConfig) -> DictConfig:
    """The task config: ``cfg`` without its ``hydra`` node (as Hydra hands it to the task)."""
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def plan_runs(planner: Planner, jobs: Sequence[Sequence[str]]) -> list[PlannedRun]:
    """Compose and validate every job; mark duplicates (same config hash as an earlier job)."""
    from . import app

    runs: list[PlannedRun] = []
    first_with: dict[str, int] = {}
    for i, overrides in enumerate(jobs):
        run = PlannedRun(index=i, overrides=list(overrides))
        runs.append(run)
        try:
            cfg = planner.compose(overrides)
        except Exception as exc:  # a composition error: the job would fail the same way
            run.error = _one_line(exc)
            continue
        run.dim, run.force = cfg.get("dim"), bool(cfg.get("force", False))
        try:
            run.name = cfg.tracking.run_name or app.default_run_name(cfg)
        except Exception:
            run.name = " ".join(overrides)
        try:
            spec, _ = app.validate(cfg)
            run.digest = app.config_hash(cfg)
            run.stack_key = (
                spec.stack_key(), str(cfg.device), int(cfg.eval_every), bool(cfg.checkpoint),
                bool(cfg.tracking.enabled), str(cfg.tracking.uri), str(cfg.tracking.experiment),
                int(cfg.tracking.log_every), bool(cfg.force),
            )
            if cfg.tracking.enabled:
                from .tracking import resolve_tracking_uri

                experiment = cfg.tracking.experiment or f"kdkge-{app.dataset_name(cfg)}"
                run.tracking = (resolve_tracking_uri(cfg.tracking.uri or None), str(experiment))
        except Exception as exc:
            run.error = _one_line(exc)
            continue
        if run.digest in first_with:
            run.duplicate_of = first_with[run.digest]
            run.status = "duplicate"
        else:
            first_with[run.digest] = i
    return runs


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def sweep_id_of(name: str, runs: Sequence[PlannedRun]) -> str:
    """``<name>-<8 hex>``: the hex digits hash the sorted config hashes (or overrides) of all runs."""
    keys = sorted({r.digest or " ".join(sorted(r.overrides)) for r in runs})
    return f"{name}-{hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:8]}"


# --------------------------------------------------------------------------- #
# MLflow look-ups
# --------------------------------------------------------------------------- #


def _store_exists(uri: str) -> bool:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):].split("?", 1)[0]).exists()
    return True


def _search_all(uri: str, experiment: str, filter_string: str) -> list:
    from mlflow.tracking import MlflowClient

    from .tracking import check_reachable

    check_reachable(uri)  # an unreachable server fails in seconds, not after MLflow's retries
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_runs(uri: str, experiment: str) -> dict[str, str]:
    """config hash → id of the newest FINISHED run in ``experiment`` (nothing created if missing)."""
    if not _store_exists(uri):
        return {}
    done: dict[str, str] = {}
    for run in _search_all(uri, experiment, "attributes.status = 'FINISHED'"):
        digest = run.data.tags.get("config_hash")
        if digest and digest not in done:
            done[digest] = run.info.run_id
    return done


def sweep_runs(uri: str, experiment: str, sweep_id: str, since_ms: int) -> dict[str, Any]:
    """config hash → the newest run tagged ``sweep_id`` that started at or after ``since_ms``."""
    newest: dict[str, Any] = {}
    for run in _search_all(uri, experiment, f"tags.sweep_id = '{sweep_id}' and attributes.start_time >= {since_ms}"):
        digest = run.data.tags.get("config_hash")
        if digest and digest not in newest:
            newest[digest] = run
    return newest


# --------------------------------------------------------------------------- #
# Stacked jobs
# --------------------------------------------------------------------------- #

_UNSAFE = ("'", '"', "\\", "$")


def stack_override(member_overrides: Sequence[Sequence[str]]) -> str | None:
    """``stack=[['calibration=none'],['calibration=ls_0.1']]``, or None if an override cannot be quoted."""
    if any(ch in o for member in member_overrides for o in member for ch in _UNSAFE):
        return None
    return f"{STACK_KEY}=[" + ",".join("[" + ",".join(f"'{o}'" for o in m) + "]" for m in member_overrides) + "]"


def member_overrides_of_stacked_job() -> tuple[list[str], list[list[str]]]:
    """Inside a stacked job: (the job's common overrides, each member's full override list)."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    common = [o for o in hc.overrides.task if _key_of(o) != STACK_KEY]
    parsed = OverridesParser.create().parse_overrides([o for o in hc.overrides.task if _key_of(o) == STACK_KEY])
    members = [list(m) for m in parsed[0].value()] if parsed else []
    return common, [common + m for m in members]


def compose_members(members: Sequence[Sequence[str]]) -> list[DictConfig]:
    """Compose each member's task config exactly as Hydra composes a job (same loader and overrides)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    loader = GlobalHydra.instance().config_loader()
    cfgs = []
    for overrides in members:
        full = loader.load_configuration(
            config_name=hc.job.config_name, overrides=list(hc.overrides.hydra) + list(overrides), run_mode=RunMode.RUN,
        )
        cfgs.append(_drop_hydra(full))
    return cfgs


def run_stacked_job(cfg: DictConfig) -> list[float | None]:
    """The task of a stacked job: compose its members and train them with :func:`kdkge.app.train_group`."""
    from . import app

    _, members = member_overrides_of_stacked_job()
    cfgs = compose_members(members)
    print(f"stacked job: {len(cfgs)} configurations trained as one batched model")
    results = app.train_group(cfgs, overrides=[" ".join(m) for m in members])
    return [app.job_value(r) for r in results]


# --------------------------------------------------------------------------- #
# The sweeper
# --------------------------------------------------------------------------- #


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


@dataclass
class LaunchUnit:
    """One launched job: a single run, or several stacked runs."""

    overrides: list[str]
    members: list[int] = field(default_factory=list)  # indices into the planned runs
    result: JobReturn | None = None


class KdkgeSweeperBase(Sweeper):
    """Hydra's basic sweeper (same ``params``, same expansion) plus aliases, grids, planning, skip-finished, stacking, dry run, summary.

    Parameters (``hydra.sweeper.*``, defaults in ``conf/hydra/sweeper/kdkge.yaml``):

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
        # Not a subclass of Hydra's BasicSweeper: Hydra's plugin scan re-executes its module, after
        # which BasicSweeper.__init__'s super() no longer matches a class imported before the scan.
        self.max_batch_size = max_batch_size
        self.params = dict(params) if params else {}
        self.grids = [dict(g) for g in grids] if grids else []
        self.hydra_context = self.config = self.launcher = None
        self.dry_run, self.stack, self.skip_finished = bool(dry_run), bool(stack), bool(skip_finished)

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

    # -- the sweep --------------------------------------------------------- #

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None
        assert self.launcher is not None or self.dry_run

        started_ms = int(time.time() * 1000)
        jobs = expand(self.params, self.grids, arguments)
        planner = Planner(self.hydra_context.config_loader, self.config)
        runs = plan_runs(planner, jobs)
        name = self._sweep_name()

        # one sweep id for all runs (a sweep_id=... given by the user wins)
        given = [o.split("=", 1)[1] for r in runs for o in r.overrides if _key_of(o) == SWEEP_ID_KEY]
        sweep_id = given[0] if given else sweep_id_of(name, runs)
        extra = [] if given else [f"{SWEEP_ID_KEY}={sweep_id}"]

        kind = self._launcher_kind()
        stores = sorted({r.tracking[0] for r in runs if r.tracking})
        if kind == "remote":
            local = [u for u in stores if not u.startswith(("http://", "https://", "databricks"))]
            if local and not self.dry_run:
                raise SweepError(
                    f"error: launcher {OmegaConf.select(self.config, 'hydra.launcher._target_')} runs jobs on other machines, "
                    f"but the MLflow store is {local[0]}: start a shared tracking server (mlflow server ...) and set "
                    "MLFLOW_TRACKING_URI=http://<host>:<port> (or tracking.uri=...)"
                )
            if len(stores) == 1 and not any(_key_of(o) == "tracking.uri" for r in runs for o in r.overrides):
                extra.append(f"tracking.uri='{stores[0]}'")  # the jobs' environment may lack MLFLOW_TRACKING_URI

        # what MLflow already holds
        lookup_error = None
        done: dict[tuple[str, str], dict[str, str]] = {}
        for key in sorted({r.tracking for r in runs if r.tracking}):
            try:
                if not self.dry_run:
                    from .tracking import ensure_store

                    ensure_store(key[0])
                done[key] = finished_runs(*key) if _store_exists(key[0]) else {}
            except Exception as exc:
                if not self.dry_run:
                    raise SweepError(f"error: MLflow store {key[0]}: {_one_line(exc)}") from exc
                lookup_error = _one_line(exc)
                done[key] = {}
        for r in runs:
            if r.digest and r.tracking and r.status == "pending" and not r.force:
                r.done_run = done.get(r.tracking, {}).get(r.digest)

        # launch units
        pending = [r for r in runs if r.status == "pending" and not r.error and not (self.skip_finished and r.done_run)]
        units = self._units(pending, extra)
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
                if not any(_key_of(o) == "threads" for o in u.overrides):
                    u.overrides.append(f"threads={threads}")

        self._print_plan(name, sweep_id, runs, units, kind, threads, lookup_error)
        if self.dry_run:
            if getattr(self, "launcher_missing", None):
                print(f"note: {self.launcher_missing}")
            print("dry run: nothing was launched (drop hydra.sweeper.dry_run=true, or DRY=1, to run it)")
            return []

        # the store(s) and experiments exist before any worker starts
        from .tracking import MlflowTracker

        for key in sorted({r.tracking for r in pending if r.tracking}):
            MlflowTracker(key[0], experiment=key[1])

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        parents = self._open_parents(name, sweep_id, runs, units, arguments, kind, sweep_dir)
        returns = []
        interrupted = None
        failure = None
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
            failure = exc
            raise
        finally:
            summary = self._summarise(runs, units, sweep_id, started_ms, interrupted is not None)
            self._print_summary(name, sweep_id, runs, summary, sweep_dir, interrupted is not None)
            (sweep_dir / "sweep_summary.json").write_text(json.dumps(summary, indent=2))
            self._close_parents(parents, runs, summary, "KILLED" if interrupted else "FAILED" if failure else "FINISHED")
        if interrupted is not None:
            raise interrupted
        return returns

    # -- parent runs (kdkge.parent_runs) ---------------------------------- #

    def _open_parents(self, name, sweep_id, runs, units, arguments, kind, sweep_dir) -> dict:
        """One parent run per (store, experiment) of the sweep's runs; its id goes to every job there.

        A parent that cannot be created (e.g. the server refuses) is a warning: the sweep runs unnested.
        """
        from .parent_runs import ParentRun, log_json, swept_params

        parents: dict[tuple[str, str], Any] = {}
        keys = sorted({r.tracking for r in runs if r.tracking and not r.error and r.status != "duplicate"})
        params = swept_params((r.overrides for r in runs if r.tracking), skip=(SWEEP_ID_KEY, PARENT_KEY, STACK_KEY))
        member_unit = {i: n for n, u in enumerate(units) for i in u.members}
        plan = [{"index": r.index, "name": r.name, "overrides": r.overrides, "config_hash": r.digest,
                 "state": ("invalid: " + r.error) if r.error else f"duplicate of #{r.duplicate_of}" if r.status == "duplicate"
                 else f"skip: FINISHED run {r.done_run}" if r.done_run and self.skip_finished else "train",
                 "job": member_unit.get(r.index)} for r in runs]
        for key in keys:
            try:
                parent = ParentRun(
                    key[0], key[1], kind="sweep", key={SWEEP_ID_KEY: sweep_id}, name=sweep_id,
                    tags={"sweep": name, "overrides": " ".join(arguments), "launcher": kind,
                          "runs": str(sum(r.tracking == key for r in runs if r.status != "duplicate")),
                          "multirun_dir": str(sweep_dir)},
                    params=dict(list(params.items())[:100]),
                )
                log_json(parent, plan, "plan.json")
                parents[key] = parent
                print(f"MLflow parent run {parent.run_id} ({'reopened' if parent.reopened else 'new'}) in experiment "
                      f"{key[1]!r}: the runs of this sweep are nested under it")
            except Exception as exc:
                log.warning("could not create the sweep's parent run in %s: %s", key[1], _one_line(exc))
        for u in units:
            key = runs[u.members[0]].tracking
            if key in parents and not any(_key_of(o) == PARENT_KEY for o in u.overrides):
                u.overrides.append(f"{PARENT_KEY}='{parents[key].run_id}'")
        return parents

    def _close_parents(self, parents, runs, summary, status) -> None:
        """Children table (logged and printed), the summary, the counts; then end each parent."""
        from .parent_runs import child_rows, log_children, log_json, varying_keys

        if not parents:
            return
        entries = {e["index"]: e for e in summary["runs"]}
        columns = varying_keys([r.overrides for r in runs if r.status != "duplicate"],
                               skip=(SWEEP_ID_KEY, PARENT_KEY, STACK_KEY))
        for key, parent in parents.items():
            try:
                mine = [entries[r.index] for r in runs if r.tracking == key and r.status != "duplicate"]
                text = log_children(parent, child_rows(parent, mine, columns), columns)
                log_json(parent, summary, "sweep_summary.json")
                counts = {s: sum(e["status"] == s for e in mine) for s in ("finished", "skipped", "failed")}
                parent.set_tags({"counts": ", ".join(f"{n} {s}" for s, n in counts.items())})
                print(f"\nruns of sweep {summary['sweep_id']} in experiment {key[1]!r} (parent run {parent.run_id}; "
                      "children.csv/.md there):")
                print(text, end="")
            except Exception as exc:
                log.warning("could not record the children of parent run %s: %s", parent.run_id, _one_line(exc))
            finally:
                try:
                    parent.end(status)
                except Exception as exc:
                    log.warning("could not end parent run %s: %s", parent.run_id, _one_line(exc))

    def _units(self, pending: list[PlannedRun], extra: list[str]) -> list[LaunchUnit]:
        groups: "OrderedDict[Any, list[PlannedRun]]" = OrderedDict()
        for r in pending:
            key = r.stack_key if self.stack else ("single", r.index)
            groups.setdefault(key, []).append(r)
        units: list[LaunchUnit] = []
        for members in groups.values():
            if len(members) > 1:
                common = [o for o in members[0].overrides if all(o in m.overrides for m in members)]
                specific = [[o for o in m.overrides if o not in common] for m in members]
                override = stack_override(specific)
                if override is not None:
                    units.append(LaunchUnit([*common, *extra, override], [m.index for m in members]))
                    continue
            units.extend(LaunchUnit([*m.overrides, *extra], [m.index]) for m in members)
        return units

    # -- reporting --------------------------------------------------------- #

    def _print_plan(self, name, sweep_id, runs, units, kind, threads, lookup_error) -> None:
        valid = [r for r in runs if not r.error and r.status != "duplicate"]
        skip = [r for r in valid if r.done_run and self.skip_finished]
        invalid = [r for r in runs if r.error]
        dups = [r for r in runs if r.status == "duplicate"]
        stacked = [u for u in units if len(u.members) > 1]
        if self.dry_run:
            print(f"sweep {sweep_id}: the runs it launches ({kind} launcher)")
            member_unit = {i: n for n, u in enumerate(units) for i in u.members}
            for r in runs:
                if r.error:
                    state = f"invalid: {r.error}"
                elif r.status == "duplicate":
                    state = f"duplicate of #{r.duplicate_of}"
                elif r.done_run and self.skip_finished:
                    state = f"skip: FINISHED run {r.done_run}"
                else:
                    n = member_unit.get(r.index)
                    state = "train" + (f" (stacked job {n}: {len(units[n].members)} runs)" if n is not None and len(units[n].members) > 1 else "")
                print(f"  #{r.index:<3} {r.name:<40} {' '.join(r.overrides):<70} [{state}]")
        print(
            f"sweep {sweep_id}: {len(valid)} runs: {len(valid) - len(skip)} to train in {len(units)} job"
            f"{'' if len(units) == 1 else 's'}"
            + (f" ({len(stacked)} of them stacked, holding {sum(len(u.members) for u in stacked)} runs)" if stacked else "")
            + f", {len(skip)} already finished (skipped), {len(invalid)} invalid"
            + (f", {len(dups)} duplicate overrides merged" if dups else "")
            + (f"; threads={threads} per job" if threads else "")
        )
        if lookup_error:
            print(f"note: could not read MLflow ({lookup_error}); finished runs are not marked")
        if not self.dry_run:
            for r in skip:
                print(f"skip {r.name}: MLflow already holds FINISHED run {r.done_run} with config hash {r.digest[:12]} (force=true re-runs)")
            for r in invalid:
                print(f"invalid #{r.index} {' '.join(r.overrides)}: {r.error}")

    def _summarise(self, runs, units, sweep_id, started_ms, interrupted) -> dict:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for key in sorted({r.tracking for r in runs if r.tracking}):
            try:
                found[key] = sweep_runs(key[0], key[1], sweep_id, started_ms)
            except Exception as exc:  # the summary must not hide the sweep's own outcome
                log.warning("could not read MLflow for the summary: %s", exc)
                found[key] = {}
        unit_of = {i: u for u in units for i in u.members}
        for r in runs:
            if r.status == "duplicate":
                continue
            if r.error:
                r.status, r.reason = "failed", f"invalid config: {r.error}"
                continue
            if r.done_run and self.skip_finished:
                r.status, r.reason, r.run_id = "skipped", "already FINISHED", r.done_run
                continue
            unit = unit_of.get(r.index)
            mlflow_run = found.get(r.tracking, {}).get(r.digest) if r.tracking else None
            result = unit.result if unit else None
            if result is not None and result.status != JobStatus.FAILED:
                value = result._return_value
                value = value[unit.members.index(r.index)] if isinstance(value, list) else value
                if isinstance(value, float) and math.isnan(value):  # kdkge.app.job_value: claimed by another process
                    r.status, r.reason = "skipped", "being trained by another process (its claim was held)"
                    continue
            if mlflow_run is not None:
                r.run_id = mlflow_run.info.run_id
                if mlflow_run.info.status == "FINISHED":
                    r.status = "finished"
                else:
                    r.status = "failed"
                    r.reason = mlflow_run.data.tags.get("error") or mlflow_run.info.status
                continue
            if result is None:
                r.status, r.reason = "failed", "not run (sweep interrupted)" if interrupted else "not run"
            elif result.status == JobStatus.FAILED:
                r.status, r.reason = "failed", _one_line(result._return_value)
            elif r.tracking and r.done_run is None:
                value = result._return_value
                if value is None or (isinstance(value, list) and value[unit.members.index(r.index)] is None):
                    r.status = "failed"
                    r.reason = f"error before training (see {Path(result.working_dir or '.') / 'train.log'})"
                else:  # finished by another process meanwhile: the app skipped it
                    r.status, r.reason = "skipped", "FINISHED meanwhile"
            elif r.tracking:
                r.status, r.reason = "skipped", "already FINISHED"
            else:
                value = result._return_value
                ok = value is not None and not (isinstance(value, list) and value[unit.members.index(r.index)] is None)
                r.status, r.reason = ("finished", "not recorded (tracking disabled)") if ok else ("failed", "see the job log")
        counts = {s: sum(r.status == s for r in runs) for s in ("finished", "skipped", "failed", "duplicate")}
        return {
            "sweep_id": sweep_id,
            "interrupted": interrupted,
            "counts": counts,
            "runs": [
                {"index": r.index, "name": r.name, "overrides": r.overrides, "config_hash": r.digest,
                 "status": r.status, "reason": r.reason, "run_id": r.run_id, "duplicate_of": r.duplicate_of,
                 "stacked_with": len(unit_of[r.index].members) if r.index in unit_of else 0}
                for r in runs
            ],
        }

    def _print_summary(self, name, sweep_id, runs, summary, sweep_dir, interrupted) -> None:
        c = summary["counts"]
        total = len(runs) - c["duplicate"]
        print(f"\nsweep {sweep_id} {'INTERRUPTED' if interrupted else 'done'}: {total} runs: "
              f"{c['finished']} finished, {c['skipped']} skipped (already finished), {c['failed']} failed")
        for r in runs:
            if r.status == "failed":
                where = f" (MLflow run {r.run_id})" if r.run_id else ""
                print(f"  failed #{r.index} {r.name}: {r.reason}{where}")
        experiments = sorted({r.tracking[1] for r in runs if r.tracking})
        if experiments:
            print(f"MLflow: filter runs with  tags.sweep_id = '{sweep_id}'  (experiment{'s' if len(experiments) > 1 else ''} "
                  f"{', '.join(experiments)}); runs finished by an earlier sweep keep that sweep's id")
        print(f"summary: {sweep_dir / 'sweep_summary.json'}")
