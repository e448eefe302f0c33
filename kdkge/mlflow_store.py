"""The MLflow store itself: which URI, creating and upgrading a SQLite store, locks, errors.

Shared by the writers (:mod:`kdkge.tracking`) and the readers (:mod:`kdkge.store`) of runs.
The default store is ``sqlite:///<repo root>/mlflow.db`` (absolute, so it does not move when
Hydra changes the working directory), overridden by the ``MLFLOW_TRACKING_URI`` environment
variable or an explicit ``tracking_uri``.  For SQLite stores, call :func:`ensure_store` in the
parent process before starting parallel workers: workers racing to create a fresh store fail
inside MLflow's schema migrations.  Every failure is a one-line :class:`TrackingError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .paths import CACHE_DIR, REPO_ROOT

logger = logging.getLogger(__name__)

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
        if fresh:
            _copy_empty_store(target)
        engine = db_utils.create_sqlalchemy_engine(target_uri)
        try:
            if not db_utils._all_tables_exist(engine):
                logger.info("Creating MLflow store %s", uri)
                db_utils._initialize_tables(engine)
                if fresh:
                    _save_empty_store(target)
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


def _empty_store_path() -> Path:
    """Where an empty store of the installed MLflow's schema is kept: ``.cache/mlflow/empty-<revision>.db``.

    MLflow's migrations take seconds for every new store; a copy of one store made before (its
    tables and nothing else — the ``Default`` experiment is added afterwards, with this store's
    artifact root) takes milliseconds.  The file is a plain SQLite database, checked before use.
    """
    from mlflow.store.db import utils as db_utils

    return CACHE_DIR / "mlflow" / f"empty-{db_utils._get_latest_schema_revision()}.db"


def _copy_empty_store(target: Path) -> None:
    """Start ``target`` as a copy of the empty store, if there is a sound one (else leave it absent)."""
    template = _empty_store_path()
    if not template.is_file():
        return
    try:
        shutil.copyfile(template, target)
        with contextlib.closing(sqlite3.connect(target)) as con:
            sound = con.execute("PRAGMA quick_check").fetchone()[0] == "ok" \
                and con.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1 \
                and con.execute("SELECT count(*) FROM experiments").fetchone()[0] == 0
    except (OSError, sqlite3.Error):
        sound = False
    if not sound:  # a damaged or foreign file: build the store the slow way, and the template again
        target.unlink(missing_ok=True)
        template.unlink(missing_ok=True)


def _save_empty_store(target: Path) -> None:
    """Keep a copy of a just-initialised store (tables only) as the template; best effort."""
    template = _empty_store_path()
    staging = template.with_name(f"{template.name}.{os.getpid()}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, staging)
        os.replace(staging, template)
    except OSError:
        staging.unlink(missing_ok=True)


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
