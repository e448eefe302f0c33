"""Losses over all entities (Sec. 3.2, 3.3): BCE (Eq. 1/2), label smoothing, label relaxation.

A loss takes the scores ``z [B, |E|]`` of a batch and its positive cells ``(rows, cols)``
(``y[rows, cols] = 1``, every other ``y = 0``), so no dense label matrix is ever built.
Each returns the batch mean of its per-data-point loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CALIBRATIONS = ("none", "ls", "lr")


def check_alpha(alpha: float, what: str) -> float:
    if alpha is None or not (0.0 < float(alpha) < 1.0):
        raise ValueError(f"{what} needs alpha in the open interval (0, 1), got alpha={alpha!r}")
    return float(alpha)


def _softplus(z: torch.Tensor) -> torch.Tensor:
    """``log(1 + eˣ)`` without overflow: ``max(z, 0) + log1p(e^{−|z|})``."""
    return z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))


class BCELoss:
    r"""Binary cross-entropy over all entities, Eq. 2, optionally with label smoothing (Sec. 3.3.1).

    .. math:: L = -\frac{1}{|E|} \sum_{x ∈ E} p_x \log σ(z_x) + (1 - p_x) \log(1 - σ(z_x))

    averaged over the batch.  Without smoothing ``p = y``.  With label smoothing ``α`` the paper
    treats each entity as its own binary event and moves ``α/2`` of its mass to the complementary
    event: ``p = (1 − α)·y + α/2``, i.e. ``1 − α/2`` for true tails and ``α/2`` for all others.
    (dice-embeddings and PyKEEN use other formulas — e.g. ``(1 − α)·y + 1/|E|`` — we follow the
    paper's text, Sec. 3.3.1.)

    Computed without a dense target: per element ``BCE = softplus(z) − p·z``, so the sum over
    entities is ``Σ softplus(z) − (α/2)·Σ z − (1 − α)·Σ_{true} z``.
    """

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = 0.0 if smoothing == 0.0 else check_alpha(smoothing, "label smoothing")

    def __call__(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        alpha = self.smoothing
        total = _softplus(scores).sum()
        if alpha:
            total = total - (alpha / 2) * scores.sum()
        total = total - (1 - alpha) * scores[rows, cols].sum()
        return total / scores.numel()


class LabelRelaxationLoss:
    r"""Label relaxation (Sec. 3.3.2; Lienen & Hüllermeier 2021), multi-class form for 1vsAll.

    ``p̂ = softmax(z)`` over all entities, ``P = Σ_{true} p̂``.  The credal target set is
    ``Q_α = {p' : p'(true) ≥ 1 − α}``.  The loss is ``0`` if ``P ≥ 1 − α`` (``p̂ ∈ Q_α``);
    otherwise ``KL(p' ‖ p̂)`` with the closest candidate ``p'``: ``1 − α`` on the true tail(s)
    and the remaining ``α`` spread over the other entities in proportion to ``p̂`` (several true
    tails, as in KvsAll, share ``1 − α`` in proportion to ``p̂``).  ``p'`` is a constant target.

    Because ``p'`` is proportional to ``p̂`` inside the true and the false set, the divergence
    collapses to a binary KL:

    .. math:: KL(p' ‖ p̂) = (1 − α)\log\frac{1 − α}{P} + α \log\frac{α}{1 − P},

    whose gradient w.r.t. the logits is ``p̂ − p'``, exactly that of the constant-target KL.
    Evaluating it at ``min(P, 1 − α)`` gives the ``0`` branch (and a zero gradient) for free;
    ``log P`` comes from log-sum-exp differences, so saturated logits (±1e4) stay finite.
    """

    def __init__(self, alpha: float):
        self.alpha = check_alpha(alpha, "label relaxation")

    def __call__(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha
        batch = scores.shape[0]
        log_norm = torch.logsumexp(scores, dim=1)
        true_scores = scores[rows, cols]
        # log Σ_{true} e^z per row, stabilised by the row's largest true score
        row_max = torch.full((batch,), -math.inf, dtype=scores.dtype, device=scores.device)
        row_max = row_max.scatter_reduce(0, rows, true_scores.detach(), reduce="amax")
        sums = torch.zeros(batch, dtype=scores.dtype, device=scores.device).index_add(
            0, rows, torch.exp(true_scores - row_max[rows])
        )
        log_p_true = (row_max + torch.log(sums)) - log_norm
        log_p_true = log_p_true.clamp(max=math.log1p(-alpha))  # P ≥ 1 − α → loss 0
        log_p_false = torch.log(-torch.expm1(log_p_true))
        kl = (1 - alpha) * (math.log1p(-alpha) - log_p_true) + alpha * (math.log(alpha) - log_p_false)
        return kl.mean()


def reference_label_relaxation(scores: torch.Tensor, targets: torch.Tensor, alpha: float) -> torch.Tensor:
    """Direct transcription of Lienen & Hüllermeier's loss on a dense 0/1 target (for tests)."""
    pred = scores.softmax(dim=-1)
    with torch.no_grad():
        mass_true = (pred * targets).sum(-1, keepdim=True)
        mass_false = (pred * (1 - targets)).sum(-1, keepdim=True)
        credal = torch.where(targets > 0, (1 - alpha) * pred / mass_true, alpha * pred / mass_false)
    divergence = F.kl_div(pred.log(), credal, reduction="none").sum(-1)
    return torch.where(mass_true.squeeze(-1) >= 1 - alpha, torch.zeros_like(divergence), divergence).mean()


def build_loss(calibration: str = "none", alpha: float | None = None):
    """``none`` → BCE (Eq. 2); ``ls`` → BCE with label smoothing α; ``lr`` → label relaxation α."""
    if calibration == "none":
        return BCELoss()
    if calibration == "ls":
        return BCELoss(smoothing=check_alpha(alpha, "calibration=ls (label smoothing)"))
    if calibration == "lr":
        return LabelRelaxationLoss(check_alpha(alpha, "calibration=lr (label relaxation)"))
    raise ValueError(f"unknown calibration {calibration!r}: use one of {', '.join(CALIBRATIONS)}")
