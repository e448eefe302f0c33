"""Claims: at most one process trains a configuration for a tracking store at a time.

Two launches of the same sweep on one store (two terminals, a relaunch while the first still
runs, two SLURM arrays on one node) would otherwise both find a configuration unfinished and
both train it.  Before training, a run takes the claim of ``(store, config hash)``: an exclusive
``flock`` on ``.cache/claims/<key>.lock`` (``key`` = SHA-256 of store URI, experiment and config
hash).  A process that finds the claim taken skips the configuration and says who holds it.

* The kernel releases a ``flock`` when its process exits, however it dies (``kill -9``
  included), so a claim of a dead process is never stale: the next launch takes it at once.
* The file names the holder (pid, host, start time) for the skip message; it is deleted when the
  claim is released (taking a claim checks that the locked file is still the one at the path, so
  deleting never lets two processes hold one claim).
* Claims are local to one machine (and to file systems where ``flock`` works).  Runs of several
  machines on one tracking server are not coordinated by this.
* Without a writable ``.cache/claims`` a run goes on unclaimed, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .paths import CACHE_DIR

log = logging.getLogger(__name__)

CLAIM_DIR = CACHE_DIR / "claims"


def claim_key(store: str, digest: str) -> str:
    return hashlib.sha256(f"{store}\n{digest}".encode()).hexdigest()[:32]


@dataclass
class Claim:
    """``held``: this process holds it (or claims are unavailable); else ``holder`` describes who does."""

    held: bool
    path: Path | None = None
    holder: dict | None = None
    fd: int | None = None

    def describe_holder(self) -> str:
        h = self.holder or {}
        since = time.strftime("%H:%M:%S", time.localtime(h["since"])) if "since" in h else "?"
        return f"process {h.get('pid', '?')} on {h.get('host', '?')} (since {since}) holds the claim {self.path}"

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still locked: nobody can take a claim on this inode afterwards
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}


_warned = False


def acquire(store: str, digest: str, directory: Path | None = None) -> Claim:
    """Take the claim of ``(store, digest)`` without waiting; see the module docstring."""
    global _warned
    folder = Path(directory or CLAIM_DIR)
    path = folder / f"{claim_key(store, digest)}.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                holder = _read_holder(fd)
                os.close(fd)
                return Claim(held=False, path=path, holder=holder)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released and deleted between our open and our lock: try the new file
                os.close(fd)
                continue
            info = {"pid": os.getpid(), "host": platform.node(), "since": time.time(), "store": store, "config_hash": digest}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
            return Claim(held=True, path=path, holder=info, fd=fd)
    except OSError as exc:
        if not _warned:
            log.warning("cannot claim runs in %s (%s): concurrent launches of the same configuration may train it twice",
                        folder, exc.strerror or exc)
            print(f"warning: cannot claim runs in {folder} ({exc.strerror or exc}): concurrent launches of the same "
                  "configuration may train it twice")
            _warned = True
        return Claim(held=True)


@contextlib.contextmanager
def claimed(store: str, digest: str, directory: Path | None = None) -> Iterator[Claim]:
    """``with claimed(store, digest) as claim:`` — train only if ``claim.held``; released on exit."""
    claim = acquire(store, digest, directory)
    try:
        yield claim
    finally:
        claim.release()
