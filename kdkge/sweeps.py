"""Planning a sweep (``python train.py -m ...``): which runs it holds, and how they are launched.

Hydra-free where it can be: the Hydra sweeper plugin that drives a sweep (launching, dry run,
parent runs, summary) and the config source of the sweep files live in
``hydra_plugins/kdkge_sweeper`` and use this module.

* **Size aliases** (:data:`ALIASES`): under ``-m``, ``dim=range`` is the 100 squares 1², 2², …,
  100²; ``dim=paper`` the list of the paper's Sec. 5.1 exactly as printed; ``dim=tables`` the
  sizes behind Tables 4–6 (2², …, 20²).  A plain ``dim=289`` stays a single size.  Table 3's
  calibration × α axis is ``calibration=none,ls_0.1,ls_0.2,lr_0.1,lr_0.2`` (one option file per
  pair, :data:`PAPER_CALIBRATIONS`).
* **Grid expansion** (:func:`expand`): ``hydra.sweeper.params`` (a cartesian grid, as Hydra's basic
  sweeper) and optionally ``hydra.sweeper.grids`` (a list of grids whose union is swept; Tables 2
  and 3 use one size per model and dataset), then the command line.  A YAML list as a value sweeps
  over its items.
* **The plan** (:func:`plan_runs`): every run's config is composed (:class:`Planner`) and checked
  (:func:`kdkge.config.validate`) before anything starts; invalid configs and duplicates (equal
  config hash) are marked.  :func:`sweep_id_of` names the sweep: ``<sweep name>-<8 hex>``, the hex
  digits a hash of the config hashes of all its runs — stable across relaunches.
* **Launch units** (:func:`launch_units`): runs that share :func:`kdkge.identity.stack_key` (e.g.
  Table 3's five calibrations at one size) are launched as one job whose ``stack`` key lists the
  members (:func:`members_override`); :func:`kdkge.app.run_stacked_job` trains them as one batched
  model, each configuration still its own MLflow run.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, open_dict, read_write

from .config import dataset_name, validate
from .identity import config_hash, run_name, stack_key
from .paths import experiment_name

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

#: The config group of the sweep files (``sweeps/*.yaml``: ``python train.py -m +sweep=table4``).
SWEEP_GROUP = "sweep"

#: Config keys the sweeper sets on every job (so a user's value is respected).
SWEEP_ID_KEY = "sweep_id"
#: The config key ``stack`` of a stacked job: the member runs' overrides (the key keeps its name;
#: in Python it is :data:`MEMBERS_KEY`, apart from :func:`kdkge.identity.stack_key`, which groups runs).
MEMBERS_KEY = "stack"
PARENT_KEY = "parent_run"  # MLflow run id of the sweep's parent run in the job's experiment (kdkge.parent_runs)


def key_of(override: str) -> str:
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
        self._parsed: dict[str, Any] = {}  # override line -> Hydra's parsed Override (a sweep repeats its lines)

    def _parse(self, overrides: Sequence[str]) -> list:
        """Hydra's parse of each line, once per distinct line (its grammar is the planner's main cost)."""
        for line in overrides:
            if line not in self._parsed:
                self._parsed[line] = self.parser.parse_overrides([line])[0]  # raises Hydra's error for a bad line
        return [self._parsed[line] for line in overrides]

    def _is_group(self, override) -> bool:
        key = override.key_or_group
        return override.package is not None or "/" in key or key in self.groups

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """The task config (without ``hydra``) the job with ``overrides`` will run with."""
        from hydra._internal.config_loader_impl import ConfigLoaderImpl

        parsed = self._parse(overrides)
        group_part = tuple(o.input_line for o in parsed if self._is_group(o))
        values = [o for o in parsed if not self._is_group(o)]
        if group_part not in self._cache:
            full = self.loader.load_sweep_config(self.master, list(group_part))
            self._cache[group_part] = drop_hydra(full)
        cfg = copy.deepcopy(self._cache[group_part])  # keeps the schema's types and the struct flag
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        return cfg


def drop_hydra(cfg: DictConfig) -> DictConfig:
    """The task config: ``cfg`` without its ``hydra`` node (as Hydra hands it to the task)."""
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def plan_runs(planner: Planner, jobs: Sequence[Sequence[str]]) -> list[PlannedRun]:
    """Compose and validate every job; mark duplicates (same config hash as an earlier job)."""
    runs: list[PlannedRun] = []
    first_with: dict[str, int] = {}
    for i, overrides in enumerate(jobs):
        run = PlannedRun(index=i, overrides=list(overrides))
        runs.append(run)
        try:
            cfg = planner.compose(overrides)
        except Exception as exc:  # a composition error: the job would fail the same way
            run.error = one_line(exc)
            continue
        run.dim, run.force = cfg.get("dim"), bool(cfg.get("force", False))
        try:
            run.name = run_name(cfg)
        except Exception:
            run.name = " ".join(overrides)
        try:
            _check(run, cfg)
        except Exception as exc:
            run.error = one_line(exc)
            continue
        if run.digest in first_with:
            run.duplicate_of = first_with[run.digest]
            run.status = "duplicate"
        else:
            first_with[run.digest] = i
    return runs


def _check(run: PlannedRun, cfg: DictConfig) -> None:
    """Validate a composed config; fill in the run's config hash, stack key and store."""
    spec, _ = validate(cfg)
    run.digest = config_hash(cfg)
    run.stack_key = stack_key(cfg, spec)
    if cfg.tracking.enabled:
        from .tracking import resolve_tracking_uri

        experiment = cfg.tracking.experiment or experiment_name(dataset_name(cfg))
        run.tracking = (resolve_tracking_uri(cfg.tracking.uri or None), str(experiment))


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def sweep_id_of(name: str, runs: Sequence[PlannedRun]) -> str:
    """``<name>-<8 hex>``: the hex digits hash the sorted config hashes (or overrides) of all runs."""
    keys = sorted({r.digest or " ".join(sorted(r.overrides)) for r in runs})
    return f"{name}-{hashlib.sha256(json.dumps(keys).encode()).hexdigest()[:8]}"



# --------------------------------------------------------------------------- #
# Stacked jobs
# --------------------------------------------------------------------------- #

_UNSAFE = ("'", '"', "\\", "$")


def members_override(member_overrides: Sequence[Sequence[str]]) -> str | None:
    """``stack=[['calibration=none'],['calibration=ls_0.1']]``, or None if an override cannot be quoted."""
    if any(ch in o for member in member_overrides for o in member for ch in _UNSAFE):
        return None
    return f"{MEMBERS_KEY}=[" + ",".join("[" + ",".join(f"'{o}'" for o in m) + "]" for m in member_overrides) + "]"



@dataclass
class LaunchUnit:
    """One launched job: a single run, or several stacked runs."""

    overrides: list[str]
    members: list[int] = field(default_factory=list)  # indices into the planned runs
    result: Any = None  # the launcher's hydra.core.utils.JobReturn, once launched


def launch_units(pending: Sequence[PlannedRun], extra: Sequence[str], stacking: bool = True) -> list[LaunchUnit]:
    """The jobs that train ``pending``: runs of one stack key in one stacked job (``stacking``, the sweeper's
    ``hydra.sweeper.stack``), else one job each.

    ``extra`` (e.g. the sweep id) is added to every job's overrides.
    """
    groups: "OrderedDict[Any, list[PlannedRun]]" = OrderedDict()
    for r in pending:
        key = r.stack_key if stacking else ("single", r.index)
        groups.setdefault(key, []).append(r)
    units: list[LaunchUnit] = []
    for members in groups.values():
        if len(members) > 1:
            common = [o for o in members[0].overrides if all(o in m.overrides for m in members)]
            specific = [[o for o in m.overrides if o not in common] for m in members]
            override = members_override(specific)
            if override is not None:
                units.append(LaunchUnit([*common, *extra, override], [m.index for m in members]))
                continue
        units.extend(LaunchUnit([*m.overrides, *extra], [m.index]) for m in members)
    return units
