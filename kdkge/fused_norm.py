"""Batch norm (training mode) and the DistMult query ``BN(BN(h) ∘ BN(r))`` with closed-form gradients.

Why: on a CPU core at the paper's sizes (a ``[1024, 289]`` batch) ``torch.nn.BatchNorm1d`` in
training mode is slow — its statistics use ``var_mean`` over the batch axis and its backward
``native_batch_norm_backward``; the profiler puts batch norm at about a third of a DistMult 1vsAll
epoch (``kdkge/bench_floor.py``, ``results/benchmarks.md``).  Here the statistics are column sums
(``x.sum(0)``, fast), and the backward is the closed form

    ∂L/∂x = γ·σ⁻¹·(g − mean(g) − x̂·mean(g·x̂)),   ∂L/∂γ = Σ g·x̂,   ∂L/∂β = Σ g,

with ``x̂ = (x − μ)·σ⁻¹``, ``σ = √(var_biased + ε)``.  The DistMult query chains three of them
around a Hadamard product in one autograd node (one saved set of tensors, no autograd graph of a
dozen element-wise ops).

Same results as ``nn.BatchNorm1d``: outputs and gradients agree with autograd through the module in
float64 to rounding (``tests/test_bench_floor.py``), and the running statistics are updated the
same way (momentum, unbiased variance, ``num_batches_tracked``).  Used only in training mode with a
batch-norm ``momentum`` that is a number; evaluation mode and other cases take ``nn.BatchNorm1d``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable


def fusable(norm: nn.BatchNorm1d, x: torch.Tensor) -> bool:
    """Whether :func:`batch_norm` applies: training mode, affine, tracked stats, a numeric momentum, 2-D input of ≥ 2 rows."""
    return (norm.training and norm.affine and norm.track_running_stats and norm.momentum is not None
            and x.dim() == 2 and x.shape[0] > 1 and x.device.type == "cpu")


def _stats(x: torch.Tensor, eps: float):
    """``(x̂, σ⁻¹, μ, var_biased)`` of the columns of ``x [N, C]``."""
    n = x.shape[0]
    mean = x.sum(0).div_(n)
    centered = x - mean
    var = (centered * centered).sum(0).div_(n)
    inv = (var + eps).rsqrt_()
    return centered.mul_(inv), inv, mean, var


@torch.no_grad()
def _update_running(norm: nn.BatchNorm1d, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
    m = norm.momentum
    norm.running_mean.mul_(1 - m).add_(mean, alpha=m)
    norm.running_var.mul_(1 - m).add_(var, alpha=m * n / (n - 1))
    norm.num_batches_tracked.add_(1)


def _input_grad(g: torch.Tensor, xhat: torch.Tensor, inv: torch.Tensor, gamma: torch.Tensor):
    """``(∂L/∂x, ∂L/∂γ, ∂L/∂β)`` of ``y = x̂·γ + β`` given ``g = ∂L/∂y``."""
    n = g.shape[0]
    grad_beta = g.sum(0)
    grad_gamma = (g * xhat).sum(0)
    grad_x = xhat * (grad_gamma / n)
    grad_x.neg_().add_(g).sub_(grad_beta / n).mul_(gamma * inv)
    return grad_x, grad_gamma, grad_beta


class _BatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        xhat, inv, mean, var = _stats(x, eps)
        ctx.save_for_backward(xhat, inv, gamma)
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(beta, xhat, gamma), mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, g, *unused):
        xhat, inv, gamma = ctx.saved_tensors
        grad_x, grad_gamma, grad_beta = _input_grad(g, xhat, inv, gamma)
        return grad_x, grad_gamma, grad_beta, None


def batch_norm(norm: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` for ``x [N, C]``: in training mode one autograd node with the closed-form backward
    (and ``norm``'s running statistics updated as ``nn.BatchNorm1d`` does), else ``norm(x)``."""
    if not fusable(norm, x):
        return norm(x)
    y, mean, var = _BatchNorm.apply(x, norm.weight, norm.bias, norm.eps)
    _update_running(norm, mean, var, x.shape[0])
    return y


class _ProductQuery(torch.autograd.Function):
    """``BN₃(BN₁(a) ∘ BN₂(b))`` for ``a, b [N, C]``; returns it and the three ``(μ, var)`` for the running stats."""

    @staticmethod
    def forward(ctx, a, b, g1, b1, g2, b2, g3, b3, eps1, eps2, eps3):
        xa, inva, mean_a, var_a = _stats(a, eps1)
        xb, invb, mean_b, var_b = _stats(b, eps2)
        na = torch.addcmul(b1, xa, g1)
        nb = torch.addcmul(b2, xb, g2)
        xp, invp, mean_p, var_p = _stats(na * nb, eps3)
        ctx.save_for_backward(xa, inva, xb, invb, na, nb, xp, invp, g1, g2, g3)
        ctx.mark_non_differentiable(mean_a, var_a, mean_b, var_b, mean_p, var_p)
        return torch.addcmul(b3, xp, g3), mean_a, var_a, mean_b, var_b, mean_p, var_p

    @staticmethod
    @once_differentiable
    def backward(ctx, gq, *unused):
        xa, inva, xb, invb, na, nb, xp, invp, g1, g2, g3 = ctx.saved_tensors
        gp, gg3, gb3 = _input_grad(gq, xp, invp, g3)
        ga, gg1, gb1 = _input_grad(gp * nb, xa, inva, g1)
        gb, gg2, gb2 = _input_grad(gp.mul_(na), xb, invb, g2)
        return ga, gb, gg1, gb1, gg2, gb2, gg3, gb3, None, None, None


def product_query(norm_a: nn.BatchNorm1d, norm_b: nn.BatchNorm1d, norm_p: nn.BatchNorm1d, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``norm_p(norm_a(a) * norm_b(b))`` for ``a, b [N, C]`` in one autograd node (training mode), else the modules."""
    if not all(fusable(n, a) for n in (norm_a, norm_b, norm_p)):
        return norm_p(norm_a(a) * norm_b(b))
    q, *stats = _ProductQuery.apply(a, b, norm_a.weight, norm_a.bias, norm_b.weight, norm_b.bias, norm_p.weight, norm_p.bias,
                                    norm_a.eps, norm_b.eps, norm_p.eps)
    n = a.shape[0]
    for norm, (mean, var) in zip((norm_a, norm_b, norm_p), zip(stats[::2], stats[1::2])):
        _update_running(norm, mean, var, n)
    return q
