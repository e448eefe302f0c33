"""Experiment tracking: writing runs.  A small tracker interface with an MLflow implementation.

MLflow is the project's single record of results (tables, plots and sweep
resumption all read it).  Training code talks only to :class:`Tracker`, whose
base class has the whole interface (callers never probe for methods):

* :class:`NullTracker` does nothing (unit tests, ``tracking=none``);
* :class:`MlflowTracker` writes to an MLflow store through ``MlflowClient``,
  never through MLflow's global "active run", so one process can end a run
  and start the next (a Hydra multirun in one process, a failed job followed
  by the next one).

Besides the current run, a tracker writes to runs other than the current one (``create_run``,
``set_run_tags``, ``log_run_metrics``, ``terminate_run``, ...: parent runs, backfilled metrics, runs
imported from the record); ``MlflowTracker(uri, experiment=None)`` does only that.  This module builds
the one ``MlflowClient`` that writes (``tests/test_one_way_to_mlflow.py``).

Reading runs is :mod:`kdkge.store` (:class:`~kdkge.store.RunStore`); the store's URI,
creation, locks and errors are :mod:`kdkge.mlflow_store` (re-exported here for the
callers that import them from this module).

Interface modelled on PyKEEN's ``ResultTracker`` (``pykeen/trackers``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from .mlflow_store import (
    SUPPORTED_SCHEMES,
    TrackingError,
    TrackingStoreError,
    TrackingUnreachableError,
    _artifact_root,
    _first_line,
    _is_sqlite,
    _retry_locked,
    _sqlite_path,
    _store_error,
    check_mlflow_server,
    check_reachable,
    check_uri_scheme,
    default_tracking_uri,
    ensure_store,
    lock_timeout,
    resolve_tracking_uri,
)
from .paths import REPO_ROOT
from .store import RunStore, find_runs

__all__ = [
    "REPO_ROOT",
    "EXPERIMENT_TAGS",
    "RUN_STATUSES",
    "SUPPORTED_SCHEMES",
    "MlflowTracker",
    "NullTracker",
    "Tracker",
    "TrackingError",
    "TrackingStoreError",
    "TrackingUnreachableError",
    "check_mlflow_server",
    "check_uri_scheme",
    "check_reachable",
    "config_hash",
    "default_tracking_uri",
    "ensure_store",
    "find_runs",  # reading: kdkge.store (kept here for the callers that import it from this module)
    "flatten_params",
    "lock_timeout",
    "log_metrics_to_run",
    "resolve_tracking_uri",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: The terminal statuses :meth:`Tracker.end_run` accepts.
RUN_STATUSES = ("FINISHED", "FAILED", "KILLED")

# MLflow's limits (mlflow.utils.validation); repeated here to avoid importing
# mlflow for NullTracker users.
_MAX_PARAM_VAL_LENGTH = 6000
_MAX_TAG_VAL_LENGTH = 8000
_MAX_KEY_LENGTH = 250
_MAX_PARAMS_TAGS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000

#: Tags every experiment gets (at creation, and added to existing ones): MLflow 3's UI opens an
#: experiment by its kind, and without this tag it may guess "GenAI" and show traces first;
#: ``custom_model_development`` is the classic view (runs table, charts, params, metrics).
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

# --------------------------------------------------------------------------- #
# Parameters
# --------------------------------------------------------------------------- #


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _param_str(value: Any) -> str:
    """Strings as they are, lists/tuples as JSON, anything else via ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a nested mapping into ``{"a.b.c": "value"}`` with MLflow-safe strings.

    Nested mappings (dicts, OmegaConf ``DictConfig``) become dotted keys;
    lists become their JSON text, other values their ``str``.
    Values longer than MLflow's limit (6000 characters) are truncated with a
    trailing ``...``; keys longer than 250 characters are truncated too.
    """
    try:  # accept DictConfig without making omegaconf a hard requirement here
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(params, (DictConfig, ListConfig)):
            params = OmegaConf.to_container(params, resolve=True)
    except ImportError:
        pass
    flat: dict[str, str] = {}
    for key, value in params.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, full))
        else:
            flat[_truncate(full, _MAX_KEY_LENGTH)] = _truncate(_param_str(value), _MAX_PARAM_VAL_LENGTH)
    return flat


def config_hash(params: Mapping[str, Any]) -> str:
    """A stable SHA-256 (hex) of a (nested) config, independent of key order.

    Meant for the ``config_hash`` tag that :meth:`MlflowTracker.finished_run_with_hash`
    searches, so that a resumed sweep skips configurations already finished.
    """
    flat = flatten_params(params)
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------- #
# Trackers
# --------------------------------------------------------------------------- #


class Tracker:
    """Where a training run reports to.  Subclasses implement every method.

    Life cycle: :meth:`start_run`, any number of ``log_*`` calls, then
    :meth:`end_run` exactly once, also when training fails (status
    ``"FAILED"``) or is interrupted (``"KILLED"``); :meth:`run` does this.
    """

    def start_run(self, run_name: str, tags: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None) -> str:
        """Start a run named ``run_name`` with ``tags`` and (nested) ``params``; return its id."""
        raise NotImplementedError

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log (nested) parameters of the current run; see :func:`flatten_params`."""
        raise NotImplementedError

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log scalar metrics of the current run, optionally at ``step`` (e.g. the epoch)."""
        raise NotImplementedError

    def log_metric_steps(self, rows: Iterable[tuple]) -> None:
        """Log metrics of several steps at once: rows ``(step, {name: value})`` or
        ``(step, {name: value}, timestamp_ms)``.

        The default calls :meth:`log_metrics` once per row; :class:`MlflowTracker`
        sends them as batches (one write per 1000 values instead of one per step,
        e.g. a per-epoch loss buffered over many epochs).
        """
        for row in rows:
            self.log_metrics(row[1], step=row[0])

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        """Copy the local file ``path`` into the run's artifacts (under ``artifact_path``)."""
        raise NotImplementedError

    def log_dict(self, d: Mapping[str, Any], filename: str) -> None:
        """Store ``d`` as a JSON (``.json``) or YAML (``.yaml``/``.yml``) artifact ``filename``."""
        raise NotImplementedError

    def log_figure(self, fig: Any, filename: str) -> None:
        """Store a matplotlib figure as the image artifact ``filename`` (e.g. ``"plots/loss.png"``)."""
        raise NotImplementedError

    def log_dataset(self, name: str, digest: str, source: str, profile: Mapping[str, Any] | None = None,
                    context: str = "training") -> None:
        """Record the data the run consumed (MLflow's dataset inputs, ``mlflow.log_input``).

        ``digest`` identifies the content (at most 36 characters), ``source`` where it lives,
        ``profile`` a small JSON-able summary.  The default records nothing.
        """

    def end_run(self, status: str = "FINISHED", error: str | None = None) -> None:
        """End the current run with ``status`` (one of :data:`RUN_STATUSES`).

        For ``"FAILED"``/``"KILLED"``, ``error`` (e.g. the exception text) is
        recorded with the run.
        """
        raise NotImplementedError

    # --- what a launch asks before it trains (defaults: a tracker that records nothing) -------
    #: Whether runs are recorded somewhere (claims, dataset inputs and checkpoint artifacts then apply).
    recording: bool = False

    @property
    def store_key(self) -> str:
        """Where this tracker records: ``<tracking URI>#<experiment>`` (claims and training states are per store)."""
        return "untracked"

    def finished_run_with_hash(self, config_hash: str) -> str | None:
        """The id of a ``FINISHED`` run tagged ``config_hash`` where this tracker records, or None."""
        return None

    def finished_metrics(self, run_id: str) -> dict[str, float]:
        """The final metrics of the recorded run ``run_id`` (empty when nothing is recorded)."""
        return {}

    def close_orphans(self, config_hash: str) -> list[str]:
        """End as KILLED the RUNNING runs of ``config_hash`` whose process is gone; their ids."""
        return []

    # --- writing to recorded runs other than the current one (defaults: nothing is recorded) -----
    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        """Tag the recorded run ``run_id`` (not necessarily the current one), e.g. an Optuna trial's state."""

    def set_run_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Tag the recorded run ``run_id`` with every ``key: value`` of ``tags``."""

    def log_run_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log flat ``params`` to the recorded run ``run_id`` (MLflow refuses to change a logged param)."""

    def log_run_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> int:
        """Add ``metrics`` at ``step`` to the recorded run ``run_id`` (e.g. a backfill); how many were written."""
        return 0

    def log_run_metric_steps(self, run_id: str, rows: Iterable[tuple]) -> None:
        """:meth:`log_metric_steps` for the recorded run ``run_id``."""

    def log_run_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file`` of the recorded run ``run_id``."""

    def create_run(self, run_name: str | None, tags: Mapping[str, Any] | None = None, *,
                   start_time: int | None = None, context_tags: bool = True) -> str:
        """Create a run that is not the current one (a parent run, a run copied from the record); its id.

        ``context_tags``: add MLflow's context tags (user, source, git commit) to ``tags``.
        """
        return uuid.uuid4().hex

    def reopen_run(self, run_id: str) -> None:
        """Mark the recorded run ``run_id`` RUNNING again (a relaunched sweep's parent run)."""

    def terminate_run(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
        """End the recorded run ``run_id`` (not the current one: :meth:`end_run`) with ``status``."""

    @contextlib.contextmanager
    def run(self, run_name: str, tags: Mapping[str, Any] | None = None,
            params: Mapping[str, Any] | None = None) -> Iterator[str]:
        """Context manager around one run: yields the run id; ends the run as
        ``FINISHED``, ``FAILED`` (an exception, re-raised) or ``KILLED``
        (``KeyboardInterrupt``/``SystemExit``, re-raised)."""
        run_id = self.start_run(run_name, tags=tags, params=params)
        try:
            yield run_id
        except (KeyboardInterrupt, SystemExit) as exc:
            self.end_run("KILLED", error=f"{type(exc).__name__}: {exc}")
            raise
        except BaseException as exc:
            self.end_run("FAILED", error=f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.end_run("FINISHED")


def _check_status(status: str) -> str:
    status = status.upper()
    if status not in RUN_STATUSES:
        raise ValueError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
    return status


class NullTracker(Tracker):
    """A tracker that records nothing (for unit tests and dry runs)."""

    def start_run(self, run_name: str, tags: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None) -> str:  # noqa: D102
        return uuid.uuid4().hex

    def log_params(self, params: Mapping[str, Any]) -> None:  # noqa: D102
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:  # noqa: D102
        pass

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:  # noqa: D102
        pass

    def log_dict(self, d: Mapping[str, Any], filename: str) -> None:  # noqa: D102
        pass

    def log_figure(self, fig: Any, filename: str) -> None:  # noqa: D102
        pass

    def end_run(self, status: str = "FINISHED", error: str | None = None) -> None:  # noqa: D102
        _check_status(status)


class MlflowTracker(Tracker):
    """A :class:`Tracker` writing to an MLflow tracking store via ``MlflowClient``.

    :param tracking_uri: store URI; ``None`` means :func:`default_tracking_uri`.
        Relative SQLite paths are resolved against the launch directory.
    :param experiment: experiment name, created if missing; ``None``: no experiment, for writing to
        recorded runs only (``log_run_metrics``, ``set_run_tag``, ...; :meth:`start_run` refuses).
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = "kdkge"):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = ensure_store(tracking_uri)  # also checks an http(s) server
        self.experiment_name = experiment
        self.client = MlflowClient(self.tracking_uri)  # the one MlflowClient that writes (reading: kdkge.store)
        self.experiment_id = None if experiment is None else self._get_or_create_experiment(experiment)
        self.run_id: str | None = None
        self.store = RunStore(self.tracking_uri)  # what this tracker reads

    recording = True

    @property
    def store_key(self) -> str:  # noqa: D102
        return f"{self.tracking_uri}#{self.experiment_name}"

    def _write(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``fn(*args, **kwargs)``; on SQLite retried while locked, and a store that cannot be written
        (read-only file or folder, vanished) becomes a one-line :class:`TrackingStoreError`."""
        if not _is_sqlite(self.tracking_uri):
            return fn(*args, **kwargs)
        path = _sqlite_path(self.tracking_uri)
        try:
            return _retry_locked(fn, *args, store=str(path), **kwargs)
        except TrackingError:
            raise
        except Exception as exc:
            text = _first_line(exc).lower()
            if "readonly" in text or "unable to open" in text or "disk i/o error" in text or "not a database" in text:
                raise _store_error(path, exc) from None
            raise

    def _artifact(self, fn: Callable[..., _T], *args: Any) -> _T:
        """An artifact write; an unwritable artifact folder becomes a one-line :class:`TrackingStoreError`."""
        try:
            return fn(*args)
        except OSError as exc:
            where = _artifact_root(self.tracking_uri) or self.tracking_uri
            raise TrackingStoreError(f"cannot write the artifacts of MLflow store {self.tracking_uri} under {where} "
                                     f"({exc.strerror or exc}): make that folder writable or set tracking.uri") from None

    def _get_or_create_experiment(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        found = self._write(self.client.get_experiment_by_name, name)
        if found is not None:
            self._mark_kind(found)
            return found.experiment_id
        location = _artifact_root(self.tracking_uri)
        if location is not None:
            location += "/" + (re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "experiment")
        try:
            return self._write(self.client.create_experiment, name, artifact_location=location,
                               tags=dict(EXPERIMENT_TAGS))
        except MlflowException:
            found = self.client.get_experiment_by_name(name)  # another worker created it
            if found is None:
                raise
            self._mark_kind(found)
            return found.experiment_id

    def _mark_kind(self, experiment: Any) -> None:
        """Give an existing experiment the tags of :data:`EXPERIMENT_TAGS` it lacks (one write, once).

        Best effort: a store that refuses (e.g. no permission on a shared server) only gets a warning.
        """
        for key, value in EXPERIMENT_TAGS.items():
            if experiment.tags.get(key) != value:
                try:
                    self._write(self.client.set_experiment_tag, experiment.experiment_id, key, value)
                except Exception as exc:
                    logger.warning("could not tag experiment %s with %s=%s: %s", experiment.name, key, value, exc)

    def _require_run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("no active run: call start_run() first")
        return self.run_id

    def start_run(self, run_name: str, tags: Mapping[str, Any] | None = None,
                  params: Mapping[str, Any] | None = None) -> str:
        """Create a run in the experiment (ending none: call :meth:`end_run` first).

        MLflow's context tags (user, source, git commit) are added to ``tags``.
        """
        if self.run_id is not None:
            raise RuntimeError(f"run {self.run_id} is still active: call end_run() first")
        self.run_id = self.create_run(run_name, tags)
        if params:
            self.log_params(params)
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:  # noqa: D102
        from mlflow.entities import Param

        run_id = self._require_run()
        items = [Param(k, v) for k, v in flatten_params(params).items()]
        for i in range(0, len(items), _MAX_PARAMS_TAGS_PER_BATCH):
            self._write(self.client.log_batch, run_id, params=items[i : i + _MAX_PARAMS_TAGS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:  # noqa: D102
        from mlflow.entities import Metric

        run_id = self._require_run()
        now = int(time.time() * 1000)
        items = [Metric(str(k), float(v), now, step or 0) for k, v in metrics.items()]
        for i in range(0, len(items), _MAX_METRICS_PER_BATCH):
            self._write(self.client.log_batch, run_id, metrics=items[i : i + _MAX_METRICS_PER_BATCH])

    def log_metric_steps(self, rows: Iterable[tuple]) -> None:  # noqa: D102
        self.log_run_metric_steps(self._require_run(), rows)

    def log_run_metric_steps(self, run_id: str, rows: Iterable[tuple]) -> None:  # noqa: D102
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [
            Metric(str(k), float(v), int(row[2]) if len(row) > 2 and row[2] is not None else now, int(row[0]))
            for row in rows
            for k, v in row[1].items()
        ]
        for i in range(0, len(items), _MAX_METRICS_PER_BATCH):
            self._write(self.client.log_batch, run_id, metrics=items[i : i + _MAX_METRICS_PER_BATCH])

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:  # noqa: D102
        self._artifact(self.client.log_artifact, self._require_run(), os.fspath(path), artifact_path)

    def log_dict(self, d: Mapping[str, Any], filename: str) -> None:  # noqa: D102
        self._artifact(self.client.log_dict, self._require_run(), dict(d), filename)

    def log_figure(self, fig: Any, filename: str) -> None:  # noqa: D102
        self._artifact(self.client.log_figure, self._require_run(), fig, filename)

    def log_dataset(self, name: str, digest: str, source: str, profile: Mapping[str, Any] | None = None,
                    context: str = "training") -> None:  # noqa: D102
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(name=name, digest=digest[:36], source_type="local", source=json.dumps({"uri": source}),
                          profile=json.dumps(dict(profile)) if profile else None)
        self._write(self.client.log_inputs, self._require_run(),
                    [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)])])

    def end_run(self, status: str = "FINISHED", error: str | None = None) -> None:
        """End the current run; for ``FAILED``/``KILLED`` store ``error`` as the tag ``error``.

        Also ends MLflow's global active run if it is this run (so code that
        used ``mlflow.*`` fluent calls inside the run does not leak it).
        """
        import mlflow

        status = _check_status(status)
        run_id = self._require_run()
        if status != "FINISHED" and error:
            self.set_run_tag(run_id, "error", error)
        self.terminate_run(run_id, status)
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)
        self.run_id = None

    def close_orphans(self, config_hash: str) -> list[str]:
        """End as KILLED the RUNNING runs of ``config_hash`` whose process is gone.

        A process killed with SIGKILL (or a lost machine) cannot end its run, which would stay
        RUNNING forever.  A run started on this host whose recorded ``pid`` no longer exists is
        ended KILLED with an ``error`` tag; runs of other hosts are left alone (we cannot tell).
        """
        import platform

        runs = self.store.runs(self.experiment_name, f"tags.config_hash = '{config_hash}' and attributes.status = 'RUNNING'")
        closed = []
        for run in runs:
            tags = run.data.tags
            if tags.get("host") != platform.node() or not tags.get("pid", "").isdigit():
                continue
            pid = int(tags["pid"])
            try:
                os.kill(pid, 0)  # signal 0: only asks whether the process exists
                alive = True
            except ProcessLookupError:
                alive = False
            except PermissionError:
                alive = True
            if alive:
                continue
            message = f"process {pid} on {tags['host']} died before the run ended; closed by a later launch"
            self.set_run_tag(run.info.run_id, "error", message)
            self.terminate_run(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
        return closed

    def finished_run_with_hash(self, config_hash: str) -> str | None:
        """Return the id of a ``FINISHED`` run tagged ``config_hash`` in this experiment, or None."""
        return self.store.finished_run(self.experiment_name, config_hash)

    def finished_metrics(self, run_id: str) -> dict[str, float]:  # noqa: D102
        return self.store.metrics(run_id)

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:  # noqa: D102
        self._write(self.client.set_tag, run_id, key, _truncate(str(value), _MAX_TAG_VAL_LENGTH))

    def set_run_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:  # noqa: D102
        from mlflow.entities import RunTag

        items = [RunTag(_truncate(str(k), _MAX_KEY_LENGTH), _truncate(str(v), _MAX_TAG_VAL_LENGTH)) for k, v in tags.items()]
        for i in range(0, len(items), _MAX_PARAMS_TAGS_PER_BATCH):
            self._write(self.client.log_batch, run_id, tags=items[i : i + _MAX_PARAMS_TAGS_PER_BATCH])

    def log_run_params(self, run_id: str, params: Mapping[str, Any]) -> None:  # noqa: D102
        from mlflow.entities import Param

        items = [Param(_truncate(str(k), _MAX_KEY_LENGTH), _truncate(str(v), _MAX_PARAM_VAL_LENGTH)) for k, v in params.items()]
        for i in range(0, len(items), _MAX_PARAMS_TAGS_PER_BATCH):
            self._write(self.client.log_batch, run_id, params=items[i : i + _MAX_PARAMS_TAGS_PER_BATCH])

    def log_run_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> int:  # noqa: D102
        self.log_run_metric_steps(str(run_id), [(step, metrics)])
        return len(metrics)

    def log_run_text(self, run_id: str, text: str, artifact_file: str) -> None:  # noqa: D102
        self._artifact(self.client.log_text, run_id, text, artifact_file)

    def create_run(self, run_name: str | None, tags: Mapping[str, Any] | None = None, *,
                   start_time: int | None = None, context_tags: bool = True) -> str:  # noqa: D102
        from mlflow.tracking.context.registry import resolve_tags

        if self.experiment_id is None:
            raise RuntimeError("this tracker has no experiment: MlflowTracker(uri, experiment=<name>) creates runs")
        tag_strs = {_truncate(str(k), _MAX_KEY_LENGTH): _truncate(_param_str(v), _MAX_TAG_VAL_LENGTH)
                    for k, v in (tags or {}).items()}
        if context_tags:
            tag_strs = resolve_tags(tag_strs)
        run = self._write(self.client.create_run, self.experiment_id, start_time=start_time, run_name=run_name,
                          tags=tag_strs or None)
        return run.info.run_id

    def reopen_run(self, run_id: str) -> None:  # noqa: D102
        self._write(self.client.update_run, run_id, status="RUNNING")

    def terminate_run(self, run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:  # noqa: D102
        self._write(self.client.set_terminated, run_id, _check_status(status), end_time=end_time)


def log_metrics_to_run(uri: str | None, run_id: str, metrics: Mapping[str, float], step: int = 0) -> int:
    """Add ``metrics`` at ``step`` to the recorded run ``run_id`` of the store ``uri`` (e.g. ``eval.py log=true``
    on a finished run); returns how many were written.  On SQLite retried while the store is locked."""
    return MlflowTracker(uri, experiment=None).log_run_metrics(run_id, metrics, step)
