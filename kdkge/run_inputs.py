"""What a run consumed, as MLflow dataset inputs (``mlflow.log_input``): name, source, digest.

Every training run records its dataset as an MLflow *dataset input* (the run page's "Datasets
used" box, and the experiment's dataset filter): the name (``umls``, or a custom folder's name),
the source (the folder holding ``train.txt``, ``valid.txt``, ``test.txt``) and a digest of the
three split files, so that two runs that say "umls" can be checked to have read the same bytes.
The digest is the first 32 hex digits of a SHA-256 over the three files (in the order train,
valid, test, each preceded by its name); the profile holds each file's own SHA-256 and line count,
and the run's protocol, noise ratio and seed (the training triples are the files plus that noise).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPLIT_FILES = ("train", "valid", "test")

_CACHE: dict[tuple, dict[str, Any]] = {}


def split_digests(folder: str | Path) -> dict[str, Any]:
    """``{"digest": <32 hex>, "splits": {split: {"sha256": ..., "lines": n}}}`` of a dataset folder.

    Files are read in 1 MiB blocks (a 1 GB split hashes in a few seconds); the result is cached per
    process by (path, size, modification time) of the three files.
    """
    folder = Path(folder)
    files = [folder / f"{split}.txt" for split in SPLIT_FILES]
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key in _CACHE:
        return _CACHE[key]
    combined = hashlib.sha256()
    splits = {}
    for split, path in zip(SPLIT_FILES, files):
        own = hashlib.sha256()
        lines = 0
        combined.update(split.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                own.update(block)
                combined.update(block)
                lines += block.count(b"\n")
        combined.update(b"\0")
        splits[split] = {"sha256": own.hexdigest(), "lines": lines}
    result = {"digest": combined.hexdigest()[:32], "splits": splits}
    _CACHE[key] = result
    return result


def log_dataset(tracker, name: str, folder: str | Path, **context: Any) -> None:
    """Record the dataset folder as the run's training input; never fails the run (a warning instead).

    ``context`` (e.g. ``protocol``, ``noise_ratio``, ``seed``) goes into the profile.
    """
    try:
        folder = Path(folder).resolve()
        digests = split_digests(folder)
        tracker.log_dataset(name, digests["digest"], str(folder), profile={"splits": digests["splits"], **context})
    except Exception as exc:  # e.g. an old tracking server without dataset inputs
        log.warning("could not record the dataset input of the run: %s", exc)
