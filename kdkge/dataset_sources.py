"""Datasets that are downloaded once, verified and cached (for graphs too big to ship).

An entry of :data:`REGISTRY` (the downloadable datasets; the model registry is
:mod:`kdkge.models`) names a download URL, the archive's SHA-256 and where the split files sit
inside the archive.  :func:`fetch` downloads into the cache (``$KDKGE_CACHE`` or
``<repo>/.cache/datasets``), checks the checksum, extracts, and returns the folder holding
``train.txt``, ``valid.txt`` and ``test.txt``; later calls use the cache without a network.

    python -m kdkge.dataset_sources list
    python -m kdkge.dataset_sources fetch wn18rr          # prints the folder
    python train.py dataset=custom dataset.path=$(python -m kdkge.dataset_sources fetch wn18rr)
    RunSpec(dataset="wn18rr")                       # the Python API resolves these names itself

An entry whose checksum is not known yet (``sha256=None``) is refused unless
``allow_unverified=True`` (CLI ``--allow-unverified``); the computed checksum is printed so it
can be added here.

Archives are untrusted input.  Members with absolute paths, ``..`` components, links pointing
outside the extraction folder or special files are refused (tar: Python's ``"data"`` extraction
filter; zip: checked here, and zip entries are never links), and so is an archive that would
extract to more than ``KDKGE_MAX_EXTRACT_BYTES`` (default 4G; suffixes K, M, G, T; CLI
``--max-bytes``; argument ``max_bytes``) — a zip/tar bomb — or a download larger than that.
Each refusal is a one-line :class:`RegistryError`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO_ROOT
from .fingerprint import sha256_file



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


sha256_of = sha256_file  # the one SHA-256 of a file (kdkge.fingerprint)


#: Default cap on the bytes an archive may extract to (and a download may have): 4 GiB.
DEFAULT_MAX_EXTRACT_BYTES = 4 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str | int) -> int:
    """``4294967296``, ``500M``, ``4G``, ``1.5T`` → bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise RegistryError(f"size {text!r} is not a number of bytes: write e.g. 4294967296, 500M or 4G")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def max_extract_bytes(max_bytes: str | int | None = None) -> int:
    """The cap: ``max_bytes`` if given, else ``$KDKGE_MAX_EXTRACT_BYTES``, else 4 GiB."""
    if max_bytes is None:
        max_bytes = os.environ.get("KDKGE_MAX_EXTRACT_BYTES") or DEFAULT_MAX_EXTRACT_BYTES
    value = parse_size(max_bytes)
    if value <= 0:
        raise RegistryError(f"the extraction cap must be positive, not {max_bytes!r} (KDKGE_MAX_EXTRACT_BYTES / --max-bytes)")
    return value


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _too_big(what: str, cap: int) -> RegistryError:
    return RegistryError(
        f"{what} exceeds the cap of {_human(cap)}: refused as a possible archive bomb; if the dataset is really "
        f"that big, raise the cap with KDKGE_MAX_EXTRACT_BYTES=<size, e.g. 20G> (CLI --max-bytes)"
    )


def _safe_member_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return not name.startswith(("/", "\\")) and ".." not in parts and not re.match(r"^[A-Za-z]:", name)


def _outside(label: str, name: str) -> RegistryError:
    return RegistryError(f"{label}: refused to extract the archive: member {name!r} points outside the extraction "
                         "folder (absolute path or '..'); the archive is unsafe, check its source")


def _extract(archive: Path, target: Path, max_bytes: int | None = None, label: str = "") -> None:
    """Extract a tar or zip ``archive`` into ``target``, refusing unsafe members and bombs."""
    cap = max_extract_bytes(max_bytes)
    label = label or str(archive)
    if tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive) as tar:
                members = tar.getmembers()
                for member in members:  # the "data" filter would strip a leading "/"; refuse such archives instead
                    if not _safe_member_name(member.name):
                        raise _outside(label, member.name)
                total = sum(m.size for m in members if m.isfile())
                if total > cap:
                    raise _too_big(f"{label}: the archive's {len(members)} members hold {_human(total)}, which", cap)
                tar.extractall(target, members=members, filter="data")  # "data": no absolute paths, no links out of target
        except tarfile.FilterError as exc:
            raise RegistryError(f"{label}: refused to extract the archive: {exc} (a dataset archive holds only "
                                "files under its own folder); the archive is unsafe, check its source") from None
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise RegistryError(f"{label}: the tar archive is corrupt or truncated ({exc}); delete it and download again") from None
    elif zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                for info in infos:
                    if not _safe_member_name(info.filename):
                        raise _outside(label, info.filename)
                declared = sum(i.file_size for i in infos)
                if declared > cap:
                    raise _too_big(f"{label}: the archive's {len(infos)} members declare {_human(declared)}, which", cap)
                written = 0  # counted while writing: a zip's declared sizes can lie
                for info in infos:
                    out = target / info.filename
                    if info.is_dir():
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(out, "wb") as dst:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            written += len(block)
                            if written > cap:
                                raise _too_big(f"{label}: extracting the archive wrote more than its declared sizes and", cap)
                            dst.write(block)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
            raise RegistryError(f"{label}: the zip archive is corrupt or unsupported ({exc}); delete it and download again") from None
    else:
        raise RegistryError(f"{label} is neither a tar nor a zip archive")


def fetch(name: str, allow_unverified: bool = False, registry: dict[str, RemoteDataset] | None = None,
          max_bytes: str | int | None = None) -> Path:
    """The folder of registry dataset ``name``, downloading and verifying it on first use.

    ``max_bytes`` caps the download and the extracted size (default: ``$KDKGE_MAX_EXTRACT_BYTES``
    or 4 GiB, see the module docstring)."""
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
        cap = max_extract_bytes(max_bytes)
        try:
            with urllib.request.urlopen(entry.url, timeout=60) as response, open(archive, "wb") as out:
                received = 0
                for block in iter(lambda: response.read(1 << 20), b""):
                    received += len(block)
                    if received > cap:
                        raise _too_big(f"{name}: the download from {entry.url}", cap)
                    out.write(block)
        except OSError as exc:
            raise RegistryError(f"download of {name} from {entry.url} failed: {exc}; check the network or the URL") from None
        actual = sha256_of(archive)
        if entry.sha256 is None and not allow_unverified:
            raise RegistryError(f"{name}: no known SHA-256 to verify the download against (got {actual}); "
                                "add it to kdkge/dataset_sources.py or pass allow_unverified=True")
        if entry.sha256 is not None and actual != entry.sha256:
            raise RegistryError(f"{name}: SHA-256 mismatch for {entry.url}: expected {entry.sha256}, got {actual}; "
                                "the file changed or the download is corrupt")
        staging = Path(tmp) / "extracted"
        _extract(archive, staging, cap, label=f"{name} ({entry.url})")
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
    get.add_argument("--max-bytes", default=None, help="cap on the download and the extracted size (default: "
                     "$KDKGE_MAX_EXTRACT_BYTES or 4G); e.g. 500M, 20G")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name, entry in sorted(REGISTRY.items()):
            print(f"{name:12s} {entry.url}  sha256={entry.sha256 or 'unverified'}  ({entry.source})")
        return 0
    try:
        print(fetch(args.name, allow_unverified=args.allow_unverified, max_bytes=args.max_bytes))
    except RegistryError as exc:
        print(f"error: {exc}", file=__import__("sys").stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
