"""Label relaxation (Sec. 3.3.2; Lienen & Hüllermeier 2021), and the authors' 2022 variant.

Label relaxation is a calibration, not a base loss: ``calibration=lr`` replaces the loss
(:func:`kdkge.losses.build_loss`), so these classes are not in the loss registry.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import check_alpha, one_positive_per_row
from .fused import stacked_losses


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

    whose gradient w.r.t. the logits is ``p̂ − p'``, exactly that of the constant-target KL; the
    backward pass writes it directly (``0`` for rows inside the credal set).  ``log P`` comes from
    log-sum-exp differences, so saturated logits (±1e4) stay finite.
    """

    fused_kind, fused_param, weightable = "lr", "alpha", False

    def __init__(self, alpha: float):
        self.alpha = check_alpha(alpha, "label relaxation")

    def __call__(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return stacked_losses([self], scores.unsqueeze(0), torch.zeros_like(rows), rows, cols)[0]




class LabelRelaxation2022Loss:
    r"""The authors' label relaxation (``core/helper_classes.py:52-84`` at ``ca983cc``), quirks kept.

    ``p = softmax(z)``; the credal target is ``q_t = 1 − α`` and ``q_x = α·p_x / S`` elsewhere
    (``S = Σ_{x≠t} p_x``).  ``F.kl_div(p.log(), q)`` with its default reduction ``'mean'`` gives
    *one* scalar, the KL summed over rows and divided by ``B·|E|``; the per-row ``where(p_t > 1 − α,
    0, D)`` then only rescales it by the fraction of rows outside the credal set:

    .. math:: L = \frac{n_{out}}{B} \cdot \frac{1}{B |E|} \sum_b \Big[(1-α)\log\frac{1-α}{p_{b,t}}
              + α \log\frac{α}{S_b}\Big], \qquad n_{out} = \#\{b : p_{b,t} ≤ 1 − α\}

    (the KL of ``q`` to ``p`` collapses to this binary form because ``q ∝ p`` off the true class;
    rows inside the credal set still count in the sum).  The target is not detached in the
    authors' code, but its gradient contribution is exactly zero, so this is the same function
    and gradient.  Computed in log space (``log p_t = z_t − lse(z)``, ``log S = lse(z_{x≠t}) −
    lse(z)``): finite where the authors' ``p.log()`` gives ``−inf`` and NaN.
    """

    fused_kind, fused_param, weightable = "lr2022", "alpha", False

    def __init__(self, alpha: float):
        self.alpha = check_alpha(alpha, "label relaxation")

    def __call__(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        one_positive_per_row(scores, rows, cols, "label relaxation (paper_code)")
        return stacked_losses([self], scores.unsqueeze(0), torch.zeros_like(rows), rows, cols)[0]

    def reference(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The same in log space through autograd (for tests)."""
        tails = one_positive_per_row(scores, rows, cols, "label relaxation (paper_code)")
        a = self.alpha
        batch, entities = scores.shape
        log_norm = scores.logsumexp(-1)
        log_p_true = scores.gather(-1, tails.unsqueeze(-1)).squeeze(-1) - log_norm
        others = scores.scatter(-1, tails.unsqueeze(-1), -math.inf)
        log_rest = others.logsumexp(-1) - log_norm
        per_row = (1 - a) * (math.log(1 - a) - log_p_true) + a * (math.log(a) - log_rest)
        outside = (log_p_true <= math.log(1 - a)).sum()
        return per_row.sum() / (batch * entities) * outside / batch


def reference_label_relaxation(scores: torch.Tensor, targets: torch.Tensor, alpha: float) -> torch.Tensor:
    """Direct transcription of Lienen & Hüllermeier's loss on a dense 0/1 target (for tests)."""
    pred = scores.softmax(dim=-1)
    with torch.no_grad():
        mass_true = (pred * targets).sum(-1, keepdim=True)
        mass_false = (pred * (1 - targets)).sum(-1, keepdim=True)
        credal = torch.where(targets > 0, (1 - alpha) * pred / mass_true, alpha * pred / mass_false)
    divergence = F.kl_div(pred.log(), credal, reduction="none").sum(-1)
    return torch.where(mass_true.squeeze(-1) >= 1 - alpha, torch.zeros_like(divergence), divergence).mean()


