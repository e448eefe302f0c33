"""Datasets that are downloaded once, verified and cached (for graphs too big to ship).

A registry entry names a download URL, the archive's SHA-256 and where the split files sit
inside the archive.  :func:`fetch` downloads into the cache (``$KDKGE_CACHE`` or
``<repo>/.cache/datasets``), checks the checksum, extracts, and returns the folder holding
``train.txt``, ``valid.txt`` and ``test.txt``; later calls use the cache without a network.

    python -m kdkge.registry list
    python -m kdkge.registry fetch wn18rr          # prints the folder
    python train.py dataset=custom dataset.path=$(python -m kdkge.registry fetch wn18rr)
    RunSpec(dataset="wn18rr")                       # the Python API resolves registry names itself

An entry whose checksum is not known yet (``sha256=None``) is refused unless
``allow_unverified=True`` (CLI ``--allow-unverified``); the computed checksum is printed so it
can be added here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class RemoteDataset:
    url: str
    sha256: str | None  # of the downloaded archive; None: not verified yet
    subdir: str = ""  # folder inside the archive holding the split files ("" = top level)
    source: str = ""  # where the entry comes from


REGISTRY: dict[str, RemoteDataset] = {
    # The archives of Dettmers et al. (2018), ConvE's repository: the canonical splits.
    "wn18rr": RemoteDataset("https://github.com/TimDettmers/ConvE/raw/master/WN18RR.tar.gz", None,
                            source="Dettmers et al. 2018 (ConvE)"),
    "fb15k-237": RemoteDataset("https://github.com/TimDettmers/ConvE/raw/master/FB15k-237.tar.gz", None,
                               source="Toutanova & Chen 2015, archive of Dettmers et al. 2018"),
    "yago3-10": RemoteDataset("https://github.com/TimDettmers/ConvE/raw/master/YAGO3-10.tar.gz", None,
                              source="Mahdisoltani et al. 2015, archive of Dettmers et al. 2018"),
}


class RegistryError(ValueError):
    """A download, checksum or archive problem; the message says what and how to fix it."""


def cache_root() -> Path:
    return Path(os.environ.get("KDKGE_CACHE", REPO_ROOT / ".cache" / "datasets"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(archive: Path, target: Path) -> None:
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")  # "data": no absolute paths, no links out of target
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
    else:
        raise RegistryError(f"{archive} is neither a tar nor a zip archive")


def fetch(name: str, allow_unverified: bool = False, registry: dict[str, RemoteDataset] | None = None) -> Path:
    """The folder of registry dataset ``name``, downloading and verifying it on first use."""
    registry = REGISTRY if registry is None else registry
    if name not in registry:
        raise RegistryError(f"dataset {name!r} is not in the registry: known are {', '.join(sorted(registry))}")
    entry = registry[name]
    folder = cache_root() / name
    done = folder / ".complete"
    if done.is_file():
        return folder / entry.subdir
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / "archive"
        try:
            with urllib.request.urlopen(entry.url, timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise RegistryError(f"download of {name} from {entry.url} failed: {exc}; check the network or the URL") from None
        actual = sha256_of(archive)
        if entry.sha256 is None and not allow_unverified:
            raise RegistryError(f"{name}: no known SHA-256 to verify the download against (got {actual}); "
                                "add it to kdkge/registry.py or pass allow_unverified=True")
        if entry.sha256 is not None and actual != entry.sha256:
            raise RegistryError(f"{name}: SHA-256 mismatch for {entry.url}: expected {entry.sha256}, got {actual}; "
                                "the file changed or the download is corrupt")
        staging = Path(tmp) / "extracted"
        _extract(archive, staging)
        splits = staging / entry.subdir
        missing = [s for s in ("train.txt", "valid.txt", "test.txt") if not (splits / s).is_file()]
        if missing:
            raise RegistryError(f"{name}: the archive lacks {', '.join(missing)} in {entry.subdir or 'its top level'}")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)  # atomic within the cache's file system
        (folder / ".complete").write_text(actual + "\n")
    return folder / entry.subdir


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Downloaded datasets: list them, or fetch one and print its folder.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    get = sub.add_parser("fetch")
    get.add_argument("name")
    get.add_argument("--allow-unverified", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in sorted(REGISTRY.items()):
            print(f"{name:12s} {entry.url}  sha256={entry.sha256 or 'unverified'}  ({entry.source})")
        return 0
    try:
        print(fetch(args.name, allow_unverified=args.allow_unverified))
    except RegistryError as exc:
        print(f"error: {exc}", file=__import__("sys").stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
