"""Per-entity binary cross-entropy over all candidate tails (Eq. 2), with label smoothing (Sec. 3.3.1)."""

from __future__ import annotations

import torch

from .base import check_alpha, register
from .fused import stacked_losses


@register
class BCELoss:
    r"""Binary cross-entropy over all entities, Eq. 2, optionally with label smoothing (Sec. 3.3.1).

    .. math:: L = -\frac{1}{|E|} \sum_{x ∈ E} p_x \log σ(z_x) + (1 - p_x) \log(1 - σ(z_x))

    averaged over the batch.  Without smoothing ``p = y``.  With label smoothing ``α`` the paper
    treats each entity as its own binary event and moves ``α/2`` of its mass to the complementary
    event: ``p = (1 − α)·y + α/2``, i.e. ``1 − α/2`` for true tails and ``α/2`` for all others.
    (dice-embeddings and PyKEEN use other formulas — e.g. ``(1 − α)·y + 1/|E|`` — we follow the
    paper's text, Sec. 3.3.1.)

    Computed without a dense target: per element ``BCE = softplus(z) − p·z``, so the sum over
    entities is ``Σ softplus(z) − (α/2)·Σ z − (1 − α)·Σ_{true} z``; its gradient is
    ``(σ(z) − p) / (B·|E|)``, written directly by the backward pass.
    """

    name = "bce"
    fused_kind, fused_param, weightable = "bce", "smoothing", True

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = 0.0 if smoothing == 0.0 else check_alpha(smoothing, "label smoothing")

    def __call__(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return stacked_losses([self], scores.unsqueeze(0), torch.zeros_like(rows), rows, cols)[0]


