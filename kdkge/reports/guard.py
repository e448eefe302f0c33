"""``make tables`` never loses anything: a check on what it is about to write.

``make tables`` first collects every file it would write or delete (a *plan*: path → bytes, or
``None`` for a deletion), then :func:`losses` compares each git-tracked file the plan touches with
what would replace it. A tracked file that would be deleted, or overwritten by one with fewer
*filled cells*, is a loss; with any loss nothing is written (all or nothing), one line per file
says what would be lost, and ``make tables`` exits non-zero — unless ``--force``.

Filled cells: the entries of Markdown table lines (``| … |``) and LaTeX table rows (``… & … \\\\``)
that contain a digit — an em dash, ``---``, ``0`` and entries that start with "no " (``no runs``,
``no common seeds (0 vs 2 runs)``) are empty — and the non-empty fields of a CSV below its header.
Other files (plots) count 1 when they exist: deleting one is a loss, replacing it is not (it is
written only when no table shrinks).
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
from pathlib import Path

Plan = dict[Path, "bytes | None"]

_DIGIT = re.compile(r"\d")


def tracked_files(folder: Path) -> set[Path]:
    """Files under ``folder`` that git tracks (resolved paths); empty outside a git work tree."""
    folder = Path(folder)
    probe = folder if folder.is_dir() else folder.parent
    while not probe.is_dir():
        probe = probe.parent
    try:
        out = subprocess.run(["git", "-C", str(probe), "ls-files", "-z", "--full-name", "--", str(folder.resolve())],
                             capture_output=True, timeout=30)
        top = subprocess.run(["git", "-C", str(probe), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return set()
    if out.returncode or top.returncode:
        return set()
    root = Path(top.stdout.strip())
    return {(root / name).resolve() for name in out.stdout.decode().split("\0") if name}


def _filled(cell: str) -> bool:
    cell = cell.strip()
    return bool(_DIGIT.search(cell)) and cell != "0" and not cell.startswith("no ")


def _md_cells(text: str) -> int:
    n = 0
    for line in text.splitlines():
        if not line.startswith("|") or re.fullmatch(r"[|\s:-]+", line):
            continue
        n += sum(1 for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1]) if _filled(cell))
    return n


def _tex_cells(text: str) -> int:
    n = 0
    for line in text.splitlines():
        if "&" in line and line.rstrip().endswith("\\\\") and not line.startswith("%"):
            n += sum(1 for cell in line.split("&") if _filled(cell.replace("\\\\", "")))
    return n


def _csv_cells(text: str) -> int:
    rows = list(csv.reader(io.StringIO(text)))
    return sum(1 for row in rows[1:] for cell in row if cell.strip())


def filled_cells(path: Path, data: bytes | None) -> int:
    """The number of filled cells of a results file's contents (``None``: the file does not exist)."""
    if data is None:
        return 0
    suffix = path.suffix.lower()
    if suffix not in (".md", ".tex", ".csv"):
        return 1 if data else 0
    text = data.decode("utf-8", errors="replace")
    return {".md": _md_cells, ".tex": _tex_cells, ".csv": _csv_cells}[suffix](text)


def losses(plan: Plan, out: Path) -> list[str]:
    """One line per git-tracked file the plan would delete or replace by one with fewer filled cells."""
    tracked = tracked_files(out)
    lines = []
    for path, new in sorted(plan.items()):
        resolved = path.resolve()
        if resolved not in tracked or not path.exists():
            continue
        old = filled_cells(path, path.read_bytes())
        if new is None and old:
            lines.append(f"{path}: would be deleted (tracked by git, {old} filled cells)")
            continue
        now = filled_cells(path, new)
        if now < old:
            lines.append(f"{path}: {old} filled cells in the tracked file, {now} from these runs (would lose {old - now})")
    return lines


def apply(plan: Plan) -> list[Path]:
    """Write (atomically) and delete as planned; return the paths written."""
    written = []
    for path, data in plan.items():
        if data is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        written.append(path)
    return written
