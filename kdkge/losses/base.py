"""What every loss shares: the registry, the calibration names, α checks, the one-positive-per-row check."""

from __future__ import annotations

import torch
from ..registries import registrar

CALIBRATIONS = ("none", "ls", "lr")

#: The registered base losses by name (``loss=<name>``), filled by :func:`register`.
LOSS_CLASSES: dict[str, type] = {}


#: Class decorator: make a loss available under ``cls.name`` (:func:`kdkge.registries.registrar`).
register = registrar(LOSS_CLASSES, "loss")


def check_alpha(alpha: float, what: str) -> float:
    if alpha is None or not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"{what} needs alpha in the open interval (0, 1), got alpha={alpha!r}")
    return float(alpha)




def one_positive_per_row(scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, what: str) -> torch.Tensor:
    """The positive column of each row (``rows`` must be ``0 … B−1``: one data point per row)."""
    if len(rows) != scores.shape[0] or not torch.equal(rows, torch.arange(len(rows), device=rows.device)):
        raise ValueError(f"{what} needs exactly one true tail per score row (1vsAll or negative sampling data points)")
    return cols


