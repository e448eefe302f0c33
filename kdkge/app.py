"""The application: composed Hydra configs → tracked training runs, and ``train.py``'s command line.

:func:`train` and :func:`train_group` are pure with respect to Hydra — they take ``DictConfig``\\ s
(from ``train.py``'s ``@hydra.main``, from ``hydra.compose`` in tests or an Optuna driver) and
return each run's metrics under the names of :mod:`kdkge.schema`.  ``train(cfg)`` is
``train_group([cfg])[0]``; a group trains several configurations that share
:func:`kdkge.identity.stack_key` as one stacked model, each recorded as its own MLflow run.  For
every configuration it

1. checks the config (:func:`kdkge.config.validate`) and fails before training with a one-line
   :class:`~kdkge.config.ConfigError` if a value cannot run;
2. takes the claim of (store, :func:`~kdkge.identity.config_hash`) (:mod:`kdkge.claims`) and skips
   the run if another process holds it, or if MLflow already holds a FINISHED run with the same
   config hash (unless ``force=true``), returning that run's metrics;
3. trains with :func:`kdkge.experiment.run`, recorded by a :class:`~kdkge.recording.RunRecorder`:
   the flattened config as params and ``config.yaml`` as artifact, the tags of
   :data:`kdkge.schema.RUN_TAGS` plus ``version.*``, the per-epoch ``loss``, all rank metrics every
   ``eval_every`` epochs and at the end, ``num_parameters``, ``wall_time_s``, ``epochs_per_s``,
   the plots and the checkpoint; a single run keeps a resumable training state
   (:mod:`kdkge.training_state`);
4. prints the results table and where the run is in MLflow.

A run that raises or is interrupted is ended FAILED / KILLED with the error (tag ``error``,
traceback in the artifact ``error.txt``); the process can start the next run.

:func:`main` is what ``train.py`` calls: ``train`` (or, for a job of the kdkge sweeper that lists
several configurations, :func:`run_stacked_job`) plus the command-line error handling.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from . import claims, interrupts
from .config import ConfigError, dataset_name, validate
from .experiment import RunSpec, run
from .identity import config_hash, run_name, run_tags, stack_conflict
from .provenance import hydra_overrides
from .recording import RunRecorder, finished_metrics, make_tracker, results_table, store_key, ui_hint
from .sweeps import MEMBERS_KEY, drop_hydra, key_of
from .tracking import MlflowTracker, Tracker, TrackingError
from .tracking import config_hash as _hash_params
from .training import NonFiniteLoss
from .training_state import check_state_dir, resumable_epoch, training_state_dir, training_state_path

# Names callers found here before app.py was split (issue 15), re-exported; their homes are
# kdkge.config, kdkge.identity, kdkge.recording and kdkge.training_state.
from .config import dataset_location, run_spec, to_spec
from .identity import NON_SEMANTIC_KEYS, default_run_name, semantic_config

__all__ = [
    "CLAIMED_ELSEWHERE", "OutputDirCheck", "job_value", "main", "one_line_hydra_errors", "run_stacked_job", "train",
    "train_group",
    # re-exported
    "ConfigError", "NON_SEMANTIC_KEYS", "config_hash", "dataset_location", "dataset_name", "default_run_name",
    "make_tracker", "run_spec", "run_tags", "semantic_config", "to_spec", "training_state_path", "validate",
]

log = logging.getLogger(__name__)

#: Key of the metrics :func:`train` returns for a run it skipped because another process holds its claim.
CLAIMED_ELSEWHERE = "claimed_elsewhere"

HookOrNone = Callable[[int, dict[str, float]], None] | None


def job_value(metrics: Mapping[str, float] | None) -> float | None:
    """What a Hydra job returns for a run: its test MRR; NaN if another process trains it; None if it failed."""
    if not metrics:
        return None
    if metrics.get(CLAIMED_ELSEWHERE):
        return math.nan
    return metrics.get("test_mrr")


# --------------------------------------------------------------------------- #
# Training runs
# --------------------------------------------------------------------------- #


def train(cfg: DictConfig, *, overrides: str | None = None, tracker: Tracker | None = None,
          tags: Mapping[str, str] | None = None, on_eval: HookOrNone = None) -> dict[str, float]:
    """Train, evaluate and record one run of the composed config ``cfg``; return its metrics.

    ``train_group([cfg])[0]``.  The result maps :mod:`kdkge.schema` metric names (``test_mrr``,
    ``valid_hits_10``, ..., ``num_parameters``, ``wall_time_s``, ``epochs_per_s``) to values.
    ``overrides`` is the override string for the ``overrides`` tag (default: Hydra's, when Hydra
    runs); ``tracker`` replaces the one built from ``cfg.tracking`` (tests, drivers); ``tags`` are
    added to the run's tags (e.g. an Optuna study name); ``on_eval(epoch, flat_metrics)`` is called
    after every evaluation (every ``eval_every`` epochs and at the end) — an exception it raises
    (e.g. ``optuna.TrialPruned``) ends the run as FAILED with that error.

    Order: :func:`~kdkge.config.validate` (nothing is recorded for a value that cannot run); take
    the claim of (store, config hash) (:mod:`kdkge.claims`; held by another process: skip, returning
    ``{CLAIMED_ELSEWHERE: 1.0}``); skip a FINISHED run; check that training states can be written;
    start the MLflow run; :func:`kdkge.experiment.run` loads the data and checks negatives and memory
    (:func:`kdkge.experiment.check_resources`) before it builds the model — such an error ends the
    MLflow run FAILED with the message (tag ``error``), as a malformed data file does.
    """
    return train_group([cfg], overrides=[overrides], trackers=[tracker], tags=[tags], on_eval=[on_eval])[0]


@dataclass
class _Member:
    """One configuration of a group, checked and named."""

    cfg: DictConfig
    spec: RunSpec
    stored_dim: int
    digest: str
    name: str
    tracker: Tracker
    overrides: str | None
    tags: Mapping[str, str] | None
    on_eval: HookOrNone


def _per_member(values: Sequence | None, n: int) -> list:
    values = [None] * n if values is None else list(values)
    if len(values) != n:
        raise ValueError("train_group: cfgs, overrides and trackers (and tags, on_eval) must have the same length")
    return values


def train_group(cfgs: Sequence[DictConfig], *, overrides: Sequence[str | None] | None = None,
                trackers: Sequence[Tracker | None] | None = None, tags: Sequence[Mapping[str, str] | None] | None = None,
                on_eval: Sequence[HookOrNone] | None = None) -> list[dict[str, float]]:
    """Train several configurations as one stacked model; record each as its own MLflow run.

    The configurations must share :func:`kdkge.identity.stack_key` (they may differ in calibration,
    α and — on clean data — seed; see :data:`~kdkge.identity.STACK_SHARED_KEYS`).  Each keeps
    everything a single run gets: its own params, tags (its own ``config_hash``, ``overrides``),
    per-epoch loss, rank metrics, plot and checkpoint, plus the tags ``stack_size`` and
    ``stack_id`` when several are trained together; ``wall_time_s`` and ``epochs_per_s`` are the
    group's.  Results are identical to training each configuration alone.
    A configuration with a FINISHED run of the same config hash is skipped (unless
    ``force=true``), and so is one whose claim another process holds (:mod:`kdkge.claims`; its
    metrics are then ``{CLAIMED_ELSEWHERE: 1.0}``); the rest are stacked; one left is trained alone
    (with its resumable training state).  With early stopping (``patience``) the configurations are
    trained one after another.  ``overrides``, ``trackers``, ``tags`` and ``on_eval`` hold one
    entry (or None) per configuration, as :func:`train`'s arguments.
    Returns each configuration's metrics in the order given.  An error fails every run of the
    group (FAILED, or KILLED on Ctrl-C) and is raised.
    """
    cfgs = list(cfgs)
    n = len(cfgs)
    overrides, trackers, tags, on_eval = (_per_member(v, n) for v in (overrides, trackers, tags, on_eval))
    if n > 1 and any(c.patience for c in cfgs):  # early stopping: one configuration at a time
        return [train(c, overrides=o, tracker=t, tags=g, on_eval=h) for c, o, t, g, h in zip(cfgs, overrides, trackers, tags, on_eval)]
    members = _checked_members(cfgs, overrides, trackers, tags, on_eval)
    results: list[dict[str, float] | None] = [None] * n
    with contextlib.ExitStack() as held:  # the claims of the configurations this process trains
        todo = []
        for i, member in enumerate(members):
            results[i] = _claim_or_skip(member, held)
            if results[i] is None:
                todo.append(i)
        if todo:
            for i, metrics in zip(todo, _train_members([members[i] for i in todo])):
                results[i] = metrics
    return results  # type: ignore[return-value]


def _checked_members(cfgs, overrides, trackers, tags, on_eval) -> list[_Member]:
    """Validate every configuration, check that they may be stacked, name them, make their trackers."""
    checked = [validate(c) for c in cfgs]
    if len(cfgs) > 1:
        stack_conflict(cfgs, [spec for spec, _ in checked])
    if cfgs[0].threads:
        torch.set_num_threads(int(cfgs[0].threads))
    digests = [config_hash(c) for c in cfgs]
    names = [run_name(c) for c in cfgs]
    if len(set(digests)) < len(cfgs):
        twice = next(names[i] for i in range(len(cfgs)) if digests[i] in digests[:i])
        raise ConfigError(f"train_group: {twice} is listed twice (same config hash)")
    trackers = [t if t is not None else make_tracker(c) for t, c in zip(trackers, cfgs)]
    return [_Member(cfg, spec, stored, digest, name, tracker, ovr, tag, hook)
            for cfg, (spec, stored), digest, name, tracker, ovr, tag, hook
            in zip(cfgs, checked, digests, names, trackers, overrides, tags, on_eval)]


def _claim_or_skip(m: _Member, held: contextlib.ExitStack) -> dict[str, float] | None:
    """None if this process trains ``m`` (its claim now held until ``held`` closes), else the metrics it returns."""
    if isinstance(m.tracker, MlflowTracker):
        claim = held.enter_context(claims.claimed(store_key(m.tracker), m.digest))
        if not claim.held:
            print(f"skip {m.name}: another process is training config hash {m.digest[:12]} for this store: {claim.describe_holder()}")
            return {CLAIMED_ELSEWHERE: 1.0}
    if m.cfg.force:  # checked while holding the claim: a run finished by another process is seen here
        return None
    done = m.tracker.finished_run_with_hash(m.digest) if hasattr(m.tracker, "finished_run_with_hash") else None
    if not done:
        return None
    metrics = finished_metrics(m.tracker, done)
    print(f"skip {m.name}: MLflow already holds FINISHED run {done} with config hash {m.digest[:12]} (force=true re-runs)")
    if metrics:
        print(results_table(metrics, metrics.get("num_parameters")))
    print("\n".join(ui_hint(m.tracker, done)))
    return metrics


def _training_state(m: _Member) -> tuple[Path | None, int | None]:
    """A single run's resumable training state: (its path or None, the epoch it continues from or None)."""
    cfg = m.cfg
    if not cfg.checkpoint_every:
        return None, None
    state_path = training_state_path(m.digest, store_key(m.tracker))
    resumed_from = resumable_epoch(state_path) if cfg.resume else None
    if not cfg.resume:
        state_path.unlink(missing_ok=True)
    if resumed_from:
        print(f"resume {m.name}: continuing from the training state of epoch {resumed_from} ({state_path})")
    return state_path, resumed_from


def _member_tags(m: _Member, stack_tags: Mapping[str, str], resumed_from: int | None) -> dict[str, str]:
    overrides = hydra_overrides() if m.overrides is None else m.overrides
    tags = {**run_tags(m.cfg, m.spec, m.stored_dim, m.digest, overrides), **stack_tags, **(m.tags or {})}
    if resumed_from:
        tags["resumed_from_epoch"] = str(resumed_from)
    return tags


def _train_members(members: list[_Member]) -> list[dict[str, float]]:
    """Train the claimed configurations (one, or several stacked) and record each; print the results."""
    first, k = members[0], len(members)
    cfg = first.cfg
    if k == 1 and cfg.checkpoint_every:
        check_state_dir(training_state_dir())
    for m in members:
        if hasattr(m.tracker, "close_orphans"):
            for orphan in m.tracker.close_orphans(m.digest):
                print(f"marked run {orphan} KILLED: its process died before it ended (config hash {m.digest[:12]})")
    state_path, resumed_from = _training_state(first) if k == 1 else (None, None)
    stack_tags = {"stack_size": str(k), "stack_id": _hash_params({"members": sorted(m.digest for m in members)})[:12]} if k > 1 else {}
    single = dict(patience=int(cfg.patience), checkpoint=state_path, checkpoint_every=int(cfg.checkpoint_every),
                  resume=bool(cfg.resume)) if k == 1 else {}
    with contextlib.ExitStack() as exits:  # leaving it ends every member's MLflow run
        recorders = [RunRecorder(m.cfg, m.spec, m.name, m.tracker, _member_tags(m, stack_tags, resumed_from), m.on_eval).open(exits)
                     for m in members]
        try:
            started = time.perf_counter()
            outcome = run(
                [m.spec for m in members],
                device=str(cfg.device),
                eval_every=int(cfg.eval_every),
                select_best=bool(cfg.select_best) and cfg.eval_every > 0,
                progress=bool(cfg.progress),
                on_epoch=lambda epoch, losses: [r.on_epoch(epoch, losses[j]) for j, r in enumerate(recorders)],
                on_eval=lambda epoch, metrics: [r.on_eval(epoch, metrics[j]) for j, r in enumerate(recorders)],
                **single,
            )
            wall = time.perf_counter() - started
            all_metrics = [r.finish(result, wall) for r, result in zip(recorders, outcome)]
        except BaseException as exc:
            for r in recorders:
                r.fail(exc)
            raise
    if state_path is not None:
        state_path.unlink(missing_ok=True)  # finished: the run is in MLflow, the training state is no longer needed
    _print_results(members, recorders, outcome, all_metrics, wall)
    return all_metrics


def _print_results(members, recorders, outcome, all_metrics, wall) -> None:
    spec, cfg, k = members[0].spec, members[0].cfg, len(members)
    epochs = f"{spec.epochs} epoch{'' if spec.epochs == 1 else 's'}"
    if k == 1:
        metrics = all_metrics[0]
        print(f"\n{members[0].name}: {spec.model} on {dataset_name(cfg)}, d={spec.dim}, {epochs}, {wall:.1f} s"
              + (f" ({metrics['epochs_per_s']:.2f} epochs/s)" if "epochs_per_s" in metrics else ""))
        print(results_table(metrics, outcome[0].num_parameters))
        print("\n".join(ui_hint(members[0].tracker, recorders[0].run_id)))
        return
    print(f"\nstacked {k} runs: {spec.model} on {dataset_name(cfg)}, d={spec.dim}, {epochs}, {wall:.1f} s for all")
    for m, r, metrics, result in zip(members, recorders, all_metrics, outcome):
        print(f"\n{m.name}:")
        print(results_table(metrics, result.num_parameters))
        print("\n".join(ui_hint(m.tracker, r.run_id)))


# --------------------------------------------------------------------------- #
# A stacked job of the kdkge sweeper
# --------------------------------------------------------------------------- #


def run_stacked_job(cfg: DictConfig) -> list[float | None]:
    """The task of a stacked job (its ``stack`` lists the members): compose them, :func:`train_group`."""
    _, members = member_overrides_of_stacked_job()
    cfgs = compose_members(members)
    print(f"stacked job: {len(cfgs)} configurations trained as one batched model")
    results = train_group(cfgs, overrides=[" ".join(m) for m in members])
    return [job_value(r) for r in results]


def member_overrides_of_stacked_job() -> tuple[list[str], list[list[str]]]:
    """Inside a stacked job: (the job's common overrides, each member's full override list)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hc = HydraConfig.get()
    common = [o for o in hc.overrides.task if key_of(o) != MEMBERS_KEY]
    parsed = OverridesParser.create().parse_overrides([o for o in hc.overrides.task if key_of(o) == MEMBERS_KEY])
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
        cfgs.append(drop_hydra(full))
    return cfgs


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #

#: Errors reported as one line (``error: ...``, exit status 2) instead of a traceback.
USER_ERRORS = (ValueError, TrackingError, NonFiniteLoss)


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # pragma: no cover
        return False


def _chosen_sweep() -> str | None:
    """The sweep file chosen with ``+sweep=<name>`` (None outside Hydra or without one)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return HydraConfig.get().runtime.choices.get("sweep")
    except Exception:  # pragma: no cover
        pass
    return None


def _one_line_hydra(exc: BaseException) -> str:
    """Hydra's config error and its OmegaConf cause as one line, naming the key (``full_key``)."""
    lines, key = [], None
    for part in (exc, exc.__cause__):
        if part is None:
            continue
        for line in str(part).splitlines():
            line = line.strip()
            if line.startswith("full_key:"):
                key = line.split(":", 1)[1].strip() or key
            elif line and not line.startswith(("object_type=", "reference_type=")):
                lines.append(line.removeprefix("error: ").rstrip("."))
    text = "; ".join(dict.fromkeys(lines)) or type(exc).__name__
    return text + (f" (key: {key})" if key and f"'{key}'" not in text else "")


def one_line_hydra_errors() -> None:
    """Make Hydra's own errors about the command line (a key that does not exist, a value of the
    wrong type such as ``seed=1e20``, an unknown group option) one line, ``error: ...`` with exit
    status 1, instead of Hydra's multi-line report.  ``HYDRA_FULL_ERROR=1`` keeps Hydra's behaviour.

    Hydra has no hook for this: ``hydra._internal.utils.run_and_report`` (hydra-core 1.3.8, pinned)
    is wrapped so that :class:`hydra.errors.CompactHydraException` never reaches it.
    """
    import hydra._internal.utils as hydra_utils
    from hydra.errors import CompactHydraException

    original = hydra_utils.run_and_report
    if getattr(original, "kdkge_one_line", False):
        return

    def run_and_report(func):
        def guarded():
            try:
                return func()
            except CompactHydraException as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {_one_line_hydra(exc)}", file=sys.stderr)
                sys.exit(1)

        return original(guarded)

    run_and_report.kdkge_one_line = True
    hydra_utils.run_and_report = run_and_report


def _check_writable_folder(target: Path, key: str) -> None:
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".kdkge-probe-"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"error: Hydra's output folder {target} cannot be created ({reason}: {existing}): make it writable, "
              f"or choose another folder with {key}=<writable folder>", file=sys.stderr)
        sys.exit(2)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover
    _HydraCallback = object


class OutputDirCheck(_HydraCallback):
    """Hydra callback (``conf/train.yaml``: ``hydra.callbacks``): before Hydra creates its output
    folder (``outputs/<date>/<time>``, or ``multirun/...`` under ``-m``), check that it can be
    written, so a read-only folder is one line ``error: ...`` (exit 2) instead of a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_writable_folder(Path(str(config.hydra.run.dir)).expanduser().absolute(), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_writable_folder(Path(str(config.hydra.sweep.dir)).expanduser().absolute(), "hydra.sweep.dir")


def main(cfg: DictConfig) -> float | list[float | None] | None:
    """``train.py``'s task: :func:`train`, returning the test MRR (for sweepers).

    A :data:`USER_ERRORS` error prints ``error: <message>`` and exits with status 2 (no traceback);
    under ``-m`` it is logged and the sweep goes on (the job returns None; the MLflow run, if
    it started, is FAILED).  Ctrl-C exits with status 130 (the run is KILLED).
    A job whose ``stack`` lists several configurations (set by the kdkge sweeper) trains them
    with :func:`train_group` and returns their test MRRs as a list.
    SIGTERM (``kill``, a batch scheduler's time limit) is handled like Ctrl-C.
    """
    interrupts.terminate_like_ctrl_c()
    try:
        if cfg.get(MEMBERS_KEY):  # a job of the kdkge sweeper that trains several configurations stacked
            return run_stacked_job(cfg)
        sweep = _chosen_sweep()
        if sweep and not _multirun():
            raise ConfigError(f"+sweep={sweep} is a sweep: add -m (python train.py -m +sweep={sweep})")
        if cfg.get("resume_run"):  # python train.py resume_run=<id>: that run's recorded config (kdkge.recorded)
            from .recorded import resumed_config

            cfg, tags = resumed_config(cfg)
            metrics = train(cfg, tags=tags)
        else:
            metrics = train(cfg)
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _multirun():
            log.error("error: %s", message)
            return None
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        interrupts.SIGNALLED.clear()
        print("interrupted: the MLflow run (if started) is marked KILLED", file=sys.stderr)
        sys.exit(130)
    return job_value(metrics)
