"""Losses over all candidate tails (Sec. 3.2, 3.3): a registry of base losses (BCE, Eq. 1/2; softmax
cross-entropy), with label smoothing, and label relaxation.

Adding a loss = one file in this package defining a ``@register``-ed class with a unique ``name``,
``__init__(smoothing=0.0)`` and ``__call__(scores, rows, cols)`` (the batch mean of its per-data-point
loss), plus ``conf/loss/<name>.yaml`` with ``name: <name>``.  Every module here is imported when the
package is, so no list needs editing.  Optionally it joins the fused path (``fused_kind``,
:mod:`kdkge.losses.fused`) and 1vsAll row deduplication (``weightable = True``).

A loss takes the scores ``z [B, |E|]`` of a batch and its positive cells ``(rows, cols)``
(``y[rows, cols] = 1``, every other ``y = 0``), so no dense label matrix is ever built.
Each returns the batch mean of its per-data-point loss.

Speed: the score matrix is the largest tensor of a training step, so every loss here is one
:class:`torch.autograd.Function` whose backward writes the closed-form gradient w.r.t. the scores
(``σ(z) − p`` for BCE, ``p̂ − p'`` for label relaxation) in two or three passes, instead of
autograd replaying a dozen element-wise ops.  :func:`stacked_losses` computes the losses of all
``K`` stacked configurations in one call on ``[K, B, |E|]`` and writes one gradient tensor.
"""

from __future__ import annotations

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

from .base import CALIBRATIONS, LOSS_CLASSES, check_alpha, register  # noqa: E402
from .bce import BCELoss  # noqa: E402
from .fused import stacked_losses  # noqa: E402
from .label_relaxation import LabelRelaxation2022Loss, LabelRelaxationLoss, reference_label_relaxation  # noqa: E402
from .softmax_ce import SoftmaxCrossEntropyLoss  # noqa: E402

__all__ = ["CALIBRATIONS", "LOSSES", "LOSS_CLASSES", "BCELoss", "LabelRelaxation2022Loss", "LabelRelaxationLoss",
           "SoftmaxCrossEntropyLoss", "build_loss", "check_alpha", "reference_label_relaxation", "register", "stacked_losses"]

#: The registered base losses (``loss=...``).
LOSSES = tuple(sorted(LOSS_CLASSES))


def build_loss(calibration: str = "none", alpha: float | None = None, loss: str = "bce", protocol: str = "paper_text"):
    """The loss of a run: the base ``loss`` (per-entity BCE, Eq. 2, or softmax cross-entropy)
    with its calibration.

    ===============  ==========================  ===================================================
    calibration      ``loss=bce``                ``loss=softmax_ce``
    ===============  ==========================  ===================================================
    none             :class:`BCELoss`            :class:`SoftmaxCrossEntropyLoss`
    ls (α)           BCE, targets 1 − α/2, α/2   CE, target (1 − α)·one-hot + α/|E| (torch's)
    lr (α)           :class:`LabelRelaxationLoss` (Sec. 3.3.2); under ``protocol=paper_code``
                     :class:`LabelRelaxation2022Loss`, the authors' function with its quirks
    ===============  ==========================  ===================================================
    """
    if loss not in LOSS_CLASSES:
        raise ValueError(f"loss={loss!r} is unknown: use one of {', '.join(sorted(LOSS_CLASSES))}")
    if calibration == "none":
        return LOSS_CLASSES[loss]()
    if calibration == "ls":
        return LOSS_CLASSES[loss](smoothing=check_alpha(alpha, "calibration=ls (label smoothing)"))
    if calibration == "lr":
        a = check_alpha(alpha, "calibration=lr (label relaxation)")
        return LabelRelaxation2022Loss(a) if protocol == "paper_code" else LabelRelaxationLoss(a)
    raise ValueError(f"unknown calibration {calibration!r}: use one of {', '.join(CALIBRATIONS)}")

