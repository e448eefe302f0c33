"""Softmax cross-entropy over all candidate tails: what the authors' code trained 1vsAll with."""

from __future__ import annotations

import torch

from .base import check_alpha, one_positive_per_row, register
from .fused import stacked_losses


@register
class SoftmaxCrossEntropyLoss:
    r"""Softmax cross-entropy over all entities on the integer target, optionally label-smoothed.

    What the authors' code trained 1vsAll with (``core/executer.py:306-313`` at ``ca983cc``:
    ``nn.CrossEntropyLoss()``, or ``nn.CrossEntropyLoss(label_smoothing=α)``):

    .. math:: L = -\frac{1}{B} \sum_b \sum_x q_{b,x} \log \mathrm{softmax}(z_b)_x,
              \qquad q_b = (1 - α)\,\mathrm{onehot}(t_b) + α / |E|

    (``α = 0``: plain cross-entropy).  ``log_softmax`` keeps it finite at saturated logits.
    """

    name = "softmax_ce"
    fused_kind, fused_param, weightable = "ce", "smoothing", True
    one_tail_per_row = True  # needs strategies with one true tail per data point (RunSpec.validate checks)

    def __init__(self, smoothing: float = 0.0):
        self.smoothing = 0.0 if smoothing == 0.0 else check_alpha(smoothing, "label smoothing")

    def __call__(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        one_positive_per_row(scores, rows, cols, "softmax cross-entropy")
        return stacked_losses([self], scores.unsqueeze(0), torch.zeros_like(rows), rows, cols)[0]

    def reference(self, scores: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """The textbook formula through autograd (for tests): ``log_softmax``, gather, mean."""
        tails = one_positive_per_row(scores, rows, cols, "softmax cross-entropy")
        log_p = scores.log_softmax(dim=-1)
        true = log_p.gather(-1, tails.unsqueeze(-1)).squeeze(-1)
        if not self.smoothing:
            return -true.mean()
        a = self.smoothing
        return -((1 - a) * true + (a / scores.shape[-1]) * log_p.sum(-1)).mean()


