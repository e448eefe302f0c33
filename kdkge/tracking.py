"""Experiment tracking: a small tracker interface with an MLflow implementation.

MLflow is the project's single record of results (tables, plots and sweep
resumption all read it).  Training code talks only to :class:`Tracker`:

* :class:`NullTracker` does nothing (unit tests);
* :class:`MlflowTracker` writes to an MLflow store through ``MlflowClient``,
  never through MLflow's global "active run", so one process can end a run
  and start the next (a Hydra multirun in one process, a failed job followed
  by the next one).

The default store is ``sqlite:///<repo root>/mlflow.db`` (absolute, so it does
not move when Hydra changes the working directory), overridden by the
``MLFLOW_TRACKING_URI`` environment variable or an explicit ``tracking_uri``.
For SQLite stores, call :func:`ensure_store` in the parent process before
starting parallel workers: workers racing to create a fresh store fail inside
MLflow's schema migrations.

Interface modelled on PyKEEN's ``ResultTracker`` (``pykeen/trackers``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "REPO_ROOT",
    "EXPERIMENT_TAGS",
    "RUN_STATUSES",
    "MlflowTracker",
    "NullTracker",
    "Tracker",
    "TrackingUnreachableError",
    "check_reachable",
    "config_hash",
    "default_tracking_uri",
    "ensure_store",
    "find_runs",
    "flatten_params",
    "resolve_tracking_uri",
]

logger = logging.getLogger(__name__)

#: The repository root (the directory holding ``pyproject.toml``), derived from
#: this file's location so that it is right whatever the working directory is.
#: Requires an editable install (``pip install -e .``, as ``make install`` does).
REPO_ROOT = Path(__file__).resolve().parents[1]

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

# How long a write to a SQLite store is retried while the database is locked
# by another writer (on top of SQLite's own busy timeout, 20 s in MLflow).
_LOCK_RETRY_SECONDS = 120.0

_T = TypeVar("_T")


class TrackingUnreachableError(RuntimeError):
    """The configured MLflow tracking server does not answer."""


# --------------------------------------------------------------------------- #
# URIs and the store
# --------------------------------------------------------------------------- #


def _launch_dir() -> Path:
    """The directory the program was started from (Hydra's original cwd if Hydra runs)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    except Exception:  # hydra missing or not running
        pass
    return Path.cwd()


def default_tracking_uri() -> str:
    """Return ``$MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<repo root>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


def _is_sqlite(uri: str) -> bool:
    return uri.startswith("sqlite:///")


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _sqlite_path(uri: str) -> Path:
    """The database file of a ``sqlite:///`` URI (``sqlite:////abs`` or ``sqlite:///rel``)."""
    return Path(uri[len("sqlite:///") :].split("?", 1)[0])


def resolve_tracking_uri(uri: str | None = None) -> str:
    """Return the tracking URI to use: ``uri`` or the default, with SQLite paths made absolute.

    A relative SQLite path (``sqlite:///mlflow.db``) is taken relative to the
    directory the program was launched from (Hydra's original working
    directory when Hydra runs), not the job's working directory.
    """
    uri = uri or default_tracking_uri()
    if _is_sqlite(uri):
        path = _sqlite_path(uri)
        if not path.is_absolute():
            query = uri.split("?", 1)[1] if "?" in uri else None
            uri = f"sqlite:///{(_launch_dir() / path).resolve()}"
            if query:
                uri += f"?{query}"
    return uri


def _artifact_root(uri: str) -> str | None:
    """Artifact root for a SQLite store: ``mlartifacts/`` next to the database file.

    MLflow's own default (``./mlruns`` under the working directory) would
    scatter artifacts over Hydra's output directories.  For other stores the
    store (or server) decides.
    """
    if _is_sqlite(uri):
        return (_sqlite_path(uri).parent / "mlartifacts").as_uri()
    return None


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory`` (serialises store creation across processes)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


_READY_STORES: set[str] = set()


def ensure_store(uri: str | None = None) -> str:
    """Create or upgrade a SQLite MLflow store once; return the resolved URI.

    Call this in the parent process before parallel workers start.  It creates
    the database (and its directory) if missing, migrates an older schema to
    the installed MLflow's, switches the database to WAL journalling (readers
    no longer block writers) and creates MLflow's ``Default`` experiment.
    Creation is serialised with a file lock on the database's directory, so
    concurrent calls are safe too, and it is done once per process.  Non-SQLite
    URIs are returned unchanged (an ``http(s)`` server is checked with
    :func:`check_reachable`).
    """
    uri = resolve_tracking_uri(uri)
    if _is_http(uri):
        check_reachable(uri)
    if not _is_sqlite(uri) or uri in _READY_STORES:
        return uri

    from mlflow.store.db import utils as db_utils
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = _sqlite_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _directory_lock(path.parent):
        # A new store is built under a temporary name and renamed into place, so a process
        # killed halfway through MLflow's migrations never leaves a half-created store behind.
        fresh = not path.exists()
        target = path.with_name(f"{path.name}.creating-{os.getpid()}") if fresh else path
        target_uri = f"sqlite:///{target}"
        engine = db_utils.create_sqlalchemy_engine(target_uri)
        try:
            if not db_utils._all_tables_exist(engine):
                logger.info("Creating MLflow store %s", uri)
                db_utils._initialize_tables(engine)
            elif db_utils._get_schema_version(engine) != db_utils._get_latest_schema_revision():
                logger.warning("Upgrading the schema of MLflow store %s", uri)
                db_utils._upgrade_db(engine)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        finally:
            engine.dispose()
        # Creates the Default experiment (a write); then close the pooled
        # connections so that forked workers do not inherit them.
        store = SqlAlchemyStore(target_uri, _artifact_root(uri))
        store._dispose_engine()
        if fresh:
            os.replace(target, path)
    _READY_STORES.add(uri)
    return uri


def check_reachable(uri: str, timeout: float = 5) -> None:
    """Fail fast if an ``http(s)`` tracking server does not answer within ``timeout`` seconds.

    Any HTTP answer counts as reachable (MLflow's ``/health`` is asked).  Other
    URI schemes are not checked.  Raises :class:`TrackingUnreachableError` with
    a one-line message; MLflow itself would retry for minutes before failing.
    """
    if not _is_http(uri):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnreachableError(
            f"MLflow tracking server {uri} is unreachable: {reason}; "
            "set tracking.uri or MLFLOW_TRACKING_URI"
        ) from None


def _is_lock_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is SQLite's "database is locked"."""
    seen = 0
    while exc is not None and seen < 10:
        text = str(exc).lower()
        if "database is locked" in text or "database table is locked" in text:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _retry_locked(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Call ``fn``, retrying with backoff while SQLite reports the database as locked.

    A failed write is rolled back by MLflow, so retrying it does not duplicate it.
    """
    deadline = time.monotonic() + _LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
            logger.info("MLflow store locked; retrying %s in %.2f s", getattr(fn, "__name__", fn), delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


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

    def finished_run_with_hash(self, config_hash: str) -> str | None:
        """Never finds a run."""
        return None


class MlflowTracker(Tracker):
    """A :class:`Tracker` writing to an MLflow tracking store via ``MlflowClient``.

    :param tracking_uri: store URI; ``None`` means :func:`default_tracking_uri`.
        Relative SQLite paths are resolved against the launch directory.
    :param experiment: experiment name, created if missing.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "kdkge"):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = ensure_store(tracking_uri)  # also checks an http(s) server
        self.experiment_name = experiment
        self.client = MlflowClient(self.tracking_uri)
        self.experiment_id = self._get_or_create_experiment(experiment)
        self.run_id: str | None = None

    def _write(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if _is_sqlite(self.tracking_uri):
            return _retry_locked(fn, *args, **kwargs)
        return fn(*args, **kwargs)

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
        from mlflow.tracking.context.registry import resolve_tags

        if self.run_id is not None:
            raise RuntimeError(f"run {self.run_id} is still active: call end_run() first")
        tag_strs = {
            _truncate(str(k), _MAX_KEY_LENGTH): _truncate(_param_str(v), _MAX_TAG_VAL_LENGTH)
            for k, v in (tags or {}).items()
        }
        run = self._write(
            self.client.create_run, self.experiment_id, run_name=run_name, tags=resolve_tags(tag_strs)
        )
        self.run_id = run.info.run_id
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
        from mlflow.entities import Metric

        run_id = self._require_run()
        now = int(time.time() * 1000)
        items = [
            Metric(str(k), float(v), int(row[2]) if len(row) > 2 and row[2] is not None else now, int(row[0]))
            for row in rows
            for k, v in row[1].items()
        ]
        for i in range(0, len(items), _MAX_METRICS_PER_BATCH):
            self._write(self.client.log_batch, run_id, metrics=items[i : i + _MAX_METRICS_PER_BATCH])

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:  # noqa: D102
        self.client.log_artifact(self._require_run(), os.fspath(path), artifact_path)

    def log_dict(self, d: Mapping[str, Any], filename: str) -> None:  # noqa: D102
        self.client.log_dict(self._require_run(), dict(d), filename)

    def log_figure(self, fig: Any, filename: str) -> None:  # noqa: D102
        self.client.log_figure(self._require_run(), fig, filename)

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
            self._write(self.client.set_tag, run_id, "error", _truncate(str(error), _MAX_TAG_VAL_LENGTH))
        self._write(self.client.set_terminated, run_id, status)
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

        runs = self._write(
            self.client.search_runs,
            [self.experiment_id],
            filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'RUNNING'",
        )
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
            self._write(self.client.set_tag, run.info.run_id, "error", message)
            self._write(self.client.set_terminated, run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
        return closed

    def finished_run_with_hash(self, config_hash: str) -> str | None:
        """Return the id of a ``FINISHED`` run tagged ``config_hash`` in this experiment, or None."""
        runs = self._write(
            self.client.search_runs,
            [self.experiment_id],
            filter_string=f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None


# --------------------------------------------------------------------------- #
# Queries
# --------------------------------------------------------------------------- #


def find_runs(uri: str | None = None, experiment: str = "kdkge", filter_string: str = "",
              **search_kwargs: Any):
    """Search runs of ``experiment`` in the store ``uri`` as a pandas DataFrame.

    A thin wrapper around ``mlflow.search_runs`` (one row per run; columns
    ``run_id``, ``status``, ``params.*``, ``metrics.*``, ``tags.*``, ...) that
    does not change the global tracking URI.  ``filter_string`` uses MLflow's
    search syntax, e.g. ``"params.model = 'kd_distmult' and attributes.status = 'FINISHED'"``.
    Returns an empty DataFrame if the experiment does not exist.
    """
    import mlflow
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from mlflow.tracking._tracking_service import utils as tracking_utils

    uri = resolve_tracking_uri(uri)
    if _is_sqlite(uri) and not _sqlite_path(uri).exists():
        return pd.DataFrame()  # do not create a store just to search it
    if MlflowClient(uri).get_experiment_by_name(experiment) is None:
        return pd.DataFrame()
    # mlflow.search_runs reads the global tracking URI, and setting it also sets
    # $MLFLOW_TRACKING_URI: restore both afterwards.
    previous_uri = tracking_utils._tracking_uri
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(
            experiment_names=[experiment], filter_string=filter_string, output_format="pandas",
            **search_kwargs,
        )
    finally:
        mlflow.set_tracking_uri(previous_uri)
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
