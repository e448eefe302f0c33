"""Resumable training states of runs: where they live, and what epoch one holds.

A run with ``checkpoint_every=N`` saves its full training state (weights, Adam, batch order) every
N epochs to ``<state dir>/<config hash>-<store>.pt`` (:func:`training_state_path`); a killed run of
the same config hash and store continues from it (``resume=true``) to the same final metrics, and
a finished run deletes it.  The file itself is written and read by :func:`kdkge.experiment.run`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from pathlib import Path

from .config import ConfigError
from .paths import CACHE_DIR
from .safe_load import UnsafeFileError, load_plain

log = logging.getLogger(__name__)

TRAINING_STATE_DIR = CACHE_DIR / "training-state"


def training_state_dir() -> Path:
    """``$KDKGE_STATE_DIR``, else ``<repo>/.cache/training-state`` (gitignored)."""
    return Path(os.environ.get("KDKGE_STATE_DIR") or TRAINING_STATE_DIR)


def training_state_path(digest: str, store: str = "untracked") -> Path:
    """Where a run of this config hash for this store (:func:`kdkge.recording.store_key`) keeps its resumable training state.

    ``<config hash>-<12 hex digits of the store>.pt``: two stores never share (or delete) one
    state.  A state of the layout before stores were part of the name (``<config hash>.pt``) is
    adopted by the next run of that hash.
    """
    folder = training_state_dir()
    path = folder / f"{digest}-{hashlib.sha256(store.encode()).hexdigest()[:12]}.pt"
    legacy = folder / f"{digest}.pt"
    if not path.exists() and legacy.is_file():
        with contextlib.suppress(OSError):
            legacy.replace(path)
    return path


def check_state_dir(folder: Path) -> None:
    """Fail before training if training states cannot be written to ``folder`` (one line, with the fixes)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"training states cannot be written to {folder} ({exc.strerror or exc}): make the folder writable, point "
            "KDKGE_STATE_DIR at a writable folder, or set checkpoint_every=0 to train without resumable training states"
        ) from None


def resumable_epoch(path: Path | None) -> int | None:
    """The epoch a training state was saved at, or None.  Loaded with ``weights_only=True``: a file
    whose pickle would run code is refused (:class:`~kdkge.safe_load.UnsafeFileError`, kept for
    inspection), an unreadable one is dropped with a warning."""
    if path is None or not path.is_file():
        return None
    try:
        return int(load_plain(path, "training state")["epoch"])
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{exc} (or set resume=false, which deletes it)") from None
    except Exception as exc:  # a truncated file cannot happen (atomic writes), but never crash on it
        log.warning("ignoring unreadable training state %s: %s", path, exc)
        path.unlink(missing_ok=True)
        return None
