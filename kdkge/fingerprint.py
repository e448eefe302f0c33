"""What data a run used: SHA-256 fingerprints of split files, cheap on repeated calls.

A custom dataset (``dataset.path`` set, or ``dataset=custom``) enters the config hash with
:func:`dataset_fingerprint` of its folder, so two folders called ``kg`` holding other triples, or
one file edited in place, are other runs — never "already FINISHED".  Built-in datasets
(``dataset.path`` null) keep their hashes: their files are pinned by ``data/README.md`` and
``tests/test_data_checksums.py``; a folder given by path whose files equal a built-in's (the same
name, the same bytes) is that built-in.

Hashing a 1 GB split takes seconds, so file digests are cached in ``.cache/dataset-digests.json``
(gitignored) keyed by the file's real path, size, mtime, ctime and inode.  An entry is trusted only
if the file had not been modified for :data:`RACY_SECONDS` when it was hashed (git's "racy clean"
rule: a write within the file system's timestamp granularity after hashing could leave size and
mtime unchanged).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

from .paths import CACHE_DIR

log = logging.getLogger(__name__)

SPLIT_FILES = ("train.txt", "valid.txt", "test.txt")
CACHE_FILE = CACHE_DIR / "dataset-digests.json"
#: A digest is cached only for files last modified at least this long before they were hashed.
RACY_SECONDS = 2.0


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_cache() -> dict:
    try:
        return json.loads(CACHE_FILE.read_text())
    except (OSError, ValueError):
        return {}


def _save_cache(entries: dict) -> None:
    """Atomic (temp file + rename); a read-only ``.cache`` only costs speed."""
    try:
        CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=CACHE_FILE.parent, prefix=".dataset-digests-")
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle, indent=0, sort_keys=True)
        os.replace(tmp, CACHE_FILE)
    except OSError as exc:
        log.debug("dataset digest cache not written: %s", exc)


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, from the cache when the file is unchanged."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    cache = _load_cache()
    entry = cache.get(real)
    if entry and entry.get("key") == key and entry.get("trusted"):
        return entry["sha256"]
    hashed_at = time.time_ns()
    digest = sha256_file(Path(real))
    after = os.stat(real)
    if [after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino] == key:  # not changed while hashing
        trusted = hashed_at - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_SECONDS * 1e9
        cache = _load_cache()  # another process may have added entries meanwhile
        cache[real] = {"key": key, "sha256": digest, "trusted": trusted}
        _save_cache(cache)
    return digest


def dataset_fingerprint(folder: str | Path) -> str:
    """SHA-256 (hex) over the names and SHA-256 of ``train.txt``, ``valid.txt`` and ``test.txt``."""
    folder = Path(folder)
    lines = [f"{name} {file_digest(folder / name)}\n" for name in SPLIT_FILES]
    return hashlib.sha256("".join(lines).encode()).hexdigest()
