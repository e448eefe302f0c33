"""Loading ``.pt`` files without running code from them.

``torch.load(weights_only=False)`` unpickles arbitrary Python objects, and unpickling can call any
function (``os.system`` included).  kdkge writes only plain data into its ``.pt`` files — tensors
(``torch.Generator`` states are ``uint8`` tensors), ints, floats, strings, ``None``, lists, tuples
and dicts (the run description as a dict, Adam's ``state_dict``) — and reads every one of them,
local or downloaded from a tracking server, with :func:`load_plain`, i.e. ``weights_only=True``:
torch's restricted unpickler, which refuses any other Python object before it is built.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch


class UnsafeFileError(ValueError):
    """A ``.pt`` file whose pickle references Python objects beyond plain data: refused, nothing of it ran."""


class UnreadableFileError(ValueError):
    """A ``.pt`` file that is not a readable torch file (truncated, garbage)."""


def load_plain(path: str | Path, what: str = "checkpoint", map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with one-line errors.

    Raises :class:`UnsafeFileError` if the file's pickle references a Python global (a function or
    class such as ``posix.system``) that plain data never needs, and :class:`UnreadableFileError`
    for a file torch cannot read at all.
    """
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as exc:
        text = str(exc)
        match = re.search(r"GLOBAL (\S+)", text)
        if match:
            raise UnsafeFileError(
                f"refused to load the {what} {path}: its pickle calls the Python object {match.group(1)}, and kdkge "
                "loads .pt files with weights_only=True (plain tensors and metadata only, no code); "
                "delete the file unless you wrote it yourself with this kdkge"
            ) from None
        operand = re.search(r"(Unsupported operand \d+)", text)
        raise UnreadableFileError(
            f"cannot read the {what} {path}: not a file of plain tensors written by torch.save "
            f"({operand.group(1) if operand else 'unpickling failed'}); delete it"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UnreadableFileError(f"cannot read the {what} {path}: {first}; delete it") from None
