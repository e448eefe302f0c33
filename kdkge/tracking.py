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

from .paths import REPO_ROOT

__all__ = [
    "REPO_ROOT",
    "EXPERIMENT_TAGS",
    "RUN_STATUSES",
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
    "find_runs",
    "flatten_params",
    "resolve_tracking_uri",
]

logger = logging.getLogger(__name__)

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

# How long a write to a SQLite store is retried while the database is locked by another writer
# (``$KDKGE_STORE_LOCK_TIMEOUT`` seconds overrides it; SQLite's own busy timeout, 20 s in MLflow,
# is lowered to it when it is shorter).
_LOCK_RETRY_SECONDS = 120.0

#: Tracking URI schemes kdkge works with: a SQLite file, an MLflow server, or the SQL databases
#: MLflow supports as a backend.  (MLflow's ``file:`` store and anything else are refused.)
SUPPORTED_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


def lock_timeout() -> float:
    """Seconds a write waits for a locked SQLite store: ``$KDKGE_STORE_LOCK_TIMEOUT`` or 120."""
    text = os.environ.get("KDKGE_STORE_LOCK_TIMEOUT")
    if not text:
        return _LOCK_RETRY_SECONDS
    try:
        value = float(text)
    except ValueError:
        raise TrackingError(f"KDKGE_STORE_LOCK_TIMEOUT={text!r} must be a number of seconds (default 120)") from None
    if not value >= 0:
        raise TrackingError(f"KDKGE_STORE_LOCK_TIMEOUT={text!r} must be >= 0 seconds (default 120)")
    return value

_T = TypeVar("_T")


class TrackingError(RuntimeError):
    """A tracking store that cannot be used; the message is one line saying what, where and how to fix it."""


class TrackingUnreachableError(TrackingError):
    """The configured MLflow tracking server does not answer."""


class TrackingStoreError(TrackingError):
    """A store that is corrupt, unwritable, locked for too long, not MLflow, or of an unsupported scheme."""


def _first_line(exc: BaseException) -> str:
    """The gist of an exception: SQLAlchemy's wrapped DBAPI message, else its first line."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0].strip()


def check_uri_scheme(uri: str | None = None, key: str = "tracking.uri") -> str:
    """Raise :class:`TrackingStoreError` if ``uri`` (or the default) has a scheme kdkge does not support."""
    uri = uri or default_tracking_uri()
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    base = scheme.split("+", 1)[0]  # postgresql+psycopg2://
    if base not in SUPPORTED_SCHEMES or (base == "sqlite" and not uri.startswith("sqlite:///")):
        what = f"the scheme {scheme}:" if scheme else "a path without a scheme"
        raise TrackingStoreError(
            f"{key}={uri!r}: {what} is not a supported tracking store: use sqlite:///<folder>/mlflow.db (a local store) or "
            "http(s)://<host>:<port> (an MLflow server)"
        )
    return uri


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
    concurrent calls are safe too, and it is done once per process; files left by
    a creation that was killed (``<db>.creating-<pid>`` and its journals) are
    removed.  Non-SQLite URIs are returned unchanged (an ``http(s)`` server is
    checked with :func:`check_reachable` and :func:`check_mlflow_server`).

    Every failure is a one-line :class:`TrackingError`: an unsupported scheme
    (``file:``, ``ftp:``, a bare path), a store that is not a SQLite database, a
    folder that cannot be written, a store locked for longer than
    :func:`lock_timeout`, a server that does not answer or is not MLflow.
    """
    uri = resolve_tracking_uri(uri)
    check_uri_scheme(uri, key="tracking URI")
    if _is_http(uri) and uri not in _READY_STORES:
        check_reachable(uri)
        check_mlflow_server(uri)
        _READY_STORES.add(uri)
    if not _is_sqlite(uri) or uri in _READY_STORES:
        return uri
    path = _sqlite_path(uri)
    try:
        _retry_locked(_ensure_sqlite_store, uri, path, store=str(path))  # idempotent: safe to retry while locked
    except TrackingError:
        raise
    except Exception as exc:
        raise _store_error(path, exc) from None
    _READY_STORES.add(uri)
    return uri


def _store_error(path: Path, exc: BaseException) -> TrackingStoreError:
    """One line for a store that cannot be opened, created or written."""
    reason = _first_line(exc)
    low = reason.lower()
    if isinstance(exc, OSError) or "unable to open" in low or "readonly" in low or "read-only" in low:
        return TrackingStoreError(
            f"MLflow store {path} cannot be created or written ({reason}): make {path.parent} writable, or set "
            "tracking.uri / MLFLOW_TRACKING_URI to a writable place (e.g. sqlite:///$HOME/mlflow.db)"
        )
    if "not a database" in low or "malformed" in low or "no such table" in low or "file is encrypted" in low:
        return TrackingStoreError(
            f"MLflow store {path} is not a readable MLflow SQLite database ({reason}): move it aside "
            f"(mv {path} {path}.broken) to start a new store, or set tracking.uri to another one"
        )
    return TrackingStoreError(f"MLflow store {path} cannot be used ({type(exc).__name__}: {reason}); "
                              "check the file, or set tracking.uri to another store")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_abandoned_creations(path: Path) -> list[Path]:
    """Delete what a process killed while creating the store left: ``<db>.creating-<pid>`` and its
    ``-journal``/``-wal``/``-shm`` files, for pids that no longer run.  Called under the
    directory lock, so no live creation can be in progress; the live store's own journal (needed
    to roll back an interrupted write) is never touched."""
    removed = []
    for leftover in sorted(path.parent.glob(f"{path.name}.creating-*")):
        match = re.fullmatch(re.escape(path.name) + r"\.creating-(\d+)(-journal|-wal|-shm)?", leftover.name)
        pid = int(match.group(1)) if match else 0
        if not match or (pid != os.getpid() and _pid_alive(pid)):  # our own pid: an earlier failed attempt of ours
            continue
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed.append(leftover)
    if removed:
        logger.warning("removed %d file(s) of an interrupted store creation: %s", len(removed), ", ".join(p.name for p in removed))
    return removed


def _ensure_sqlite_store(uri: str, path: Path) -> None:
    from mlflow.store.db import utils as db_utils
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    _limit_sqlite_busy_timeout()
    if path.is_dir():
        raise TrackingStoreError(f"MLflow store {path} is a folder, not a SQLite file: set tracking.uri=sqlite:///{path}/mlflow.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    with _directory_lock(path.parent):
        _remove_abandoned_creations(path)
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
            for suffix in ("-journal", "-wal", "-shm"):  # WAL files of the temporary name (the data is in the file)
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{target}{suffix}").unlink()


def check_mlflow_server(uri: str, timeout: float = 5) -> None:
    """Fail with one line if the ``http(s)`` server at ``uri`` answers but is not an MLflow tracking server.

    Asks MLflow's REST API for the experiment ``Default``: an MLflow server answers JSON (the
    experiment, or an ``error_code``); any other web server answers HTML, text or an error page.
    An authentication challenge (401/403) is accepted (MLflow with auth).
    """
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, response.read(65536)
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read(65536) if err.fp else b""
        if status in (401, 403):
            return
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TrackingUnreachableError(
            f"MLflow tracking server {uri} is unreachable: {getattr(exc, 'reason', exc)}; set tracking.uri or MLFLOW_TRACKING_URI"
        ) from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not (isinstance(answer, dict) and ("experiment" in answer or "error_code" in answer)):
        raise TrackingStoreError(
            f"{uri} answers HTTP {status} but is not an MLflow tracking server (no MLflow JSON from "
            "/api/2.0/mlflow/experiments/get-by-name): check the host and port, or set tracking.uri / MLFLOW_TRACKING_URI"
        )


_BUSY_TIMEOUT_HOOKED = False


def _not_a_lock_report(record: logging.LogRecord) -> bool:
    """Logging filter: drop MLflow's report of a "database is locked" error (retried here)."""
    exc = record.exc_info[1] if record.exc_info else None
    return "database is locked" not in record.getMessage() and not (exc is not None and _is_lock_error(exc))


def _limit_sqlite_busy_timeout() -> None:
    """Make SQLite's busy timeout (MLflow sets 20 s per session) no longer than :func:`lock_timeout`,
    so that ``KDKGE_STORE_LOCK_TIMEOUT=2`` gives up after seconds, not after 20 s per attempt."""
    global _BUSY_TIMEOUT_HOOKED
    if _BUSY_TIMEOUT_HOOKED:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "before_cursor_execute", retval=True)
    def _busy_timeout(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().lower().startswith("pragma busy_timeout"):
            millis = int(min(20.0, lock_timeout()) * 1000)
            statement = f"PRAGMA busy_timeout = {millis};"
        return statement, parameters

    # MLflow logs every "database is locked" at ERROR level (with the exception, several lines);
    # kdkge retries those writes and reports a lock that outlasts the timeout in one line itself.
    logging.getLogger("mlflow.store.db.utils").addFilter(_not_a_lock_report)
    _BUSY_TIMEOUT_HOOKED = True


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


def _retry_locked(fn: Callable[..., _T], *args: Any, store: str | None = None, **kwargs: Any) -> _T:
    """Call ``fn``, retrying with backoff while SQLite reports the database as locked.

    A failed write is rolled back by MLflow, so retrying it does not duplicate it.  After
    :func:`lock_timeout` seconds a :class:`TrackingStoreError` names the store (``store``) and the
    time waited.
    """
    started = time.monotonic()
    deadline = started + lock_timeout()
    delay = 0.05
    while True:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() > deadline:
                waited = time.monotonic() - started
                where = store or "the MLflow store"
                raise TrackingStoreError(
                    f"MLflow store {where} is locked by another process: gave up after waiting {waited:.0f} s "
                    f"(KDKGE_STORE_LOCK_TIMEOUT={lock_timeout():g}); find the process holding it (fuser {where}) "
                    "or wait longer with a larger KDKGE_STORE_LOCK_TIMEOUT"
                ) from None
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
