"""Fused computation of the losses of ``K`` stacked configurations (one autograd node, closed-form gradients).

The score matrix is the largest tensor of a training step, so each loss kind here has a forward
and a backward that writes its closed-form gradient w.r.t. the scores (``σ(z) − p`` for BCE,
``softmax(z) − q`` for cross-entropy, ``p̂ − p'`` for label relaxation) in two or three passes,
instead of autograd replaying a dozen element-wise ops.  A loss class takes part by naming its
``fused_kind`` (a key of :data:`FUSED_KERNELS`: ``"bce"``, ``"ce"``, ``"lr"``, ``"lr2022"``) and
``fused_param`` (the attribute holding its α); a loss without one is called one slice at a time
through autograd.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _softplus(z: torch.Tensor) -> torch.Tensor:
    """``log(1 + eᶻ)`` without overflow and without error from a linear cut-off.

    ``F.softplus`` returns ``z`` itself above ``threshold``; the omitted ``log1p(e^{−z})`` is below
    half an ulp of ``z`` for ``z > 20`` in float32 and ``z > 40`` in float64, so the cut-off is exact
    after rounding — and the fused kernel is faster than ``max(z, 0) + log1p(e^{−|z|})``.
    """
    return F.softplus(z, threshold=40.0 if z.dtype == torch.float64 else 20.0)


def _row_sums(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ`` over the last two axes of ``[K, B, E]`` (rows weighted by ``weights [B]``), float64 ``[K]``.

    Rows are summed in the input dtype (the same kernel whatever K is, so a stacked slice sums
    exactly like a separate run), the B row sums in float64.
    """
    per_row = x.sum(-1).double()
    if weights is not None:
        per_row = per_row * weights.double()
    return per_row.sum(-1)




def _group_view(scores: torch.Tensor, members: list[int]):
    """The slices ``members`` of ``scores [K, ...]``: a view when they are consecutive, else a copy."""
    if members == list(range(members[0], members[-1] + 1)):
        return scores[members[0] : members[-1] + 1], slice(members[0], members[-1] + 1)
    index = torch.tensor(members, device=scores.device)
    return scores.index_select(0, index), index


def _local_positives(ks, rows, cols, members: list[int], stack: int, all_members: bool):
    """Positive cells of the configurations in ``members``, with ``ks`` renumbered 0…len−1."""
    if all_members:
        return ks, rows, cols
    local = torch.full((stack,), -1, dtype=torch.long, device=ks.device)
    local[members] = torch.arange(len(members), device=ks.device)
    mapped = local[ks]
    keep = mapped >= 0
    return mapped[keep], rows[keep], cols[keep]


def _bce_forward(z, ks, rows, cols, alphas, weights, points):
    """Σ-per-slice BCE/LS of ``z [Kg, B, E]``: ``(Σ softplus(z) − (α/2)Σz − (1−α)Σ_true z) / (points·E)``.

    ``weights [B]`` (optional): row ``b`` stands for ``weights[b]`` identical data points, whose
    positives are all listed; its all-entity terms count ``weights[b]`` times.
    """
    kg, b, e = z.shape
    total = _row_sums(_softplus(z), weights)
    true_sum = torch.zeros(kg, dtype=torch.float64, device=z.device).index_add_(0, ks, z[ks, rows, cols].double())
    if any(alphas):
        a = torch.tensor(alphas, dtype=torch.float64, device=z.device)
        total = total - (a / 2) * _row_sums(z, weights) - (1 - a) * true_sum
    else:
        total = total - true_sum
    return total / (points * e)


def _smoothed_target_gradient(out, ks, rows, cols, alphas, spread, weights, scale):
    """Turn ``out = f(z)`` (σ(z) for BCE, softmax(z) for CE) into the gradient ``(f(z) − p)·w·scale``
    for the smoothed target ``p = (1 − α)·[true] + α/spread`` (BCE: spread 2; CE: spread |E|)."""
    if any(alphas):
        a = torch.tensor(alphas, dtype=out.dtype, device=out.device)
        out.sub_((a / spread).view(-1, 1, 1))
        positive = (1 - a) * scale
    else:
        positive = scale
    if weights is None:
        out.mul_(scale.view(-1, 1, 1))
    else:
        out.mul_(scale.view(-1, 1, 1) * weights.view(1, -1, 1))
    out.index_put_((ks, rows, cols), -positive[ks], accumulate=True)


def _bce_backward(z, ks, rows, cols, alphas, weights, points, grad, out):
    """``out = (σ(z) − p)·weight·grad / (points·E)`` with ``p = 1 − α/2`` on positives and ``α/2``
    elsewhere (each positive cell is one data point's, so it gets ``−(1 − α)`` once)."""
    kg, b, e = z.shape
    scale = grad / (points * e)  # [Kg]
    torch.sigmoid(z, out=out)
    _smoothed_target_gradient(out, ks, rows, cols, alphas, 2, weights, scale)


def _ce_forward(z, ks, rows, cols, alphas, weights, points):
    """Σ-per-slice softmax CE of ``z [Kg, B, E]``: ``(Σ_b w_b·lse(z_b) − (1−α)Σ_true z − (α/E)Σ_b w_b Σ z_b) / points``.

    Row ``b`` stands for ``w_b`` data points sharing the query (``weights``; 1 without), each with
    its own positive cell listed; returns the losses and ``lse [Kg, B]`` for the backward pass.
    """
    kg, b, e = z.shape
    lse = torch.logsumexp(z, dim=-1)  # [Kg, B]
    per_row = lse.double() if weights is None else lse.double() * weights.double()
    total = per_row.sum(-1)
    true_sum = torch.zeros(kg, dtype=torch.float64, device=z.device).index_add_(0, ks, z[ks, rows, cols].double())
    if any(alphas):
        a = torch.tensor(alphas, dtype=torch.float64, device=z.device)
        total = total - (1 - a) * true_sum - (a / e) * _row_sums(z, weights)
    else:
        total = total - true_sum
    return total / points, lse


def _ce_backward(z, ks, rows, cols, alphas, weights, points, lse, grad, out):
    """``out = (w_b·softmax(z_b) − (1−α)·[true] − (α/E)·w_b)·grad / points``."""
    kg, b, e = z.shape
    scale = grad / points  # [Kg]
    torch.sub(z, lse.unsqueeze(-1), out=out).exp_()  # softmax
    _smoothed_target_gradient(out, ks, rows, cols, alphas, e, weights, scale)


def _lr_forward(z, ks, rows, cols, alphas):
    """Label relaxation per slice of ``z [Kg, B, E]`` and what its backward needs."""
    kg, b, e = z.shape
    a = torch.tensor(alphas, dtype=z.dtype, device=z.device).view(-1, 1)
    log_norm = torch.logsumexp(z, dim=-1)  # [Kg, B]
    true_scores = z[ks, rows, cols]
    flat = ks * b + rows  # (slice, row) of each positive
    # log Σ_{true} e^z per row, stabilised by the row's largest true score
    row_max = torch.full((kg * b,), -math.inf, dtype=z.dtype, device=z.device)
    row_max = row_max.scatter_reduce(0, flat, true_scores, reduce="amax")
    sums = torch.zeros(kg * b, dtype=z.dtype, device=z.device).index_add_(0, flat, torch.exp(true_scores - row_max[flat]))
    log_true = (row_max + torch.log(sums)).view(kg, b)  # log Σ_{true} e^z
    cap = torch.log1p(-a)  # log(1 − α)
    log_p_true = log_true - log_norm
    active = log_p_true < cap  # P < 1 − α: outside the credal set
    log_p_true = torch.minimum(log_p_true, cap)  # P ≥ 1 − α → loss 0
    log_p_false = torch.log(-torch.expm1(log_p_true))
    kl = (1 - a) * (cap - log_p_true) + a * (torch.log(a) - log_p_false)
    return kl.mean(dim=1), (log_norm, log_true, log_p_false, active)


def _lr_backward(z, ks, rows, cols, alphas, saved, grad, out):
    r"""``out = (p̂ − p')·grad / B`` on rows outside the credal set, ``0`` inside.

    False cells: ``p̂ − α·p̂/(1 − P) = p̂·(1 − α·e^{−log(1−P)})`` (``1 − P > α``, so bounded);
    true cells: ``p̂ − (1 − α)·p̂/P`` with ``p̂/P = e^{z − log Σ_true e^z}`` (≤ 1, saturation-safe).
    """
    kg, b, e = z.shape
    log_norm, log_true, log_p_false, active = saved
    a = torch.tensor(alphas, dtype=z.dtype, device=z.device).view(-1, 1)
    scale = (grad / b).view(-1, 1) * active  # [Kg, B], zero inside the credal set
    torch.sub(z, log_norm.unsqueeze(-1), out=out).exp_()  # p̂
    true_p = out[ks, rows, cols]
    true_share = torch.exp(z[ks, rows, cols] - log_true.view(-1)[ks * b + rows])  # p̂/P
    out.mul_(((1 - a * torch.exp(-log_p_false)) * scale).unsqueeze(-1))
    true_grad = (true_p - (1 - a.view(-1)[ks]) * true_share) * scale.view(-1)[ks * b + rows]
    out.index_put_((ks, rows, cols), true_grad)


def _lr2022_forward(z, ks, rows, cols, alphas):
    """The authors' label relaxation per slice of ``z [Kg, B, E]`` (one true tail per row): the binary KL
    ``(1−α)·log((1−α)/p_t) + α·log(α/S)`` summed over rows, ÷ B·E, × (#rows with p_t ≤ 1−α) / B."""
    kg, b, e = z.shape
    a = torch.tensor(alphas, dtype=z.dtype, device=z.device).view(-1, 1)
    log_norm = torch.logsumexp(z, dim=-1)  # [Kg, B]
    true = torch.zeros(kg, b, dtype=z.dtype, device=z.device)
    true[ks, rows] = z[ks, rows, cols]
    rest = z.clone()
    rest[ks, rows, cols] = -math.inf
    log_rest = torch.logsumexp(rest, dim=-1)  # log Σ_{x≠t} e^z
    log_p_true, log_s = true - log_norm, log_rest - log_norm
    per_row = (1 - a) * (torch.log1p(-a) - log_p_true) + a * (torch.log(a) - log_s)
    outside = (log_p_true <= torch.log1p(-a)).sum(-1).to(z.dtype)  # [Kg]
    return per_row.sum(-1) / (b * e) * outside / b, (log_norm, log_rest, outside)


def _lr2022_backward(z, ks, rows, cols, alphas, saved, grad, out):
    """``out = (p − q)·grad·n_out / (B²·E)`` with ``q_t = 1 − α``, ``q_x = α·p_x/S`` (``p_x/S = e^{z_x − lse_rest}``)."""
    kg, b, e = z.shape
    log_norm, log_rest, outside = saved
    a = torch.tensor(alphas, dtype=z.dtype, device=z.device)
    scale = grad * outside / (b * b * e)  # [Kg]
    torch.sub(z, log_norm.unsqueeze(-1), out=out).exp_()  # p
    true_p = out[ks, rows, cols]
    out.sub_(torch.exp(z - log_rest.unsqueeze(-1)).mul_(a.view(-1, 1, 1)))
    out.index_put_((ks, rows, cols), true_p - (1 - a[ks]))
    out.mul_(scale.view(-1, 1, 1))


def _no_row_weights(weights) -> None:
    if weights is not None:
        raise ValueError("label relaxation needs one score row per data point (no row weights)")


def _bce_kernel(z, pos, alphas, weights, points):
    return _bce_forward(z, *pos, alphas, weights, points), (weights, points)


def _ce_kernel(z, pos, alphas, weights, points):
    value, lse = _ce_forward(z, *pos, alphas, weights, points)
    return value, (weights, points, lse)


def _lr_kernel(z, pos, alphas, weights, points):
    _no_row_weights(weights)
    return _lr_forward(z, *pos, alphas)


def _lr2022_kernel(z, pos, alphas, weights, points):
    _no_row_weights(weights)
    return _lr2022_forward(z, *pos, alphas)


#: The fused kernels by ``fused_kind``: ``forward(z, positives, alphas, row_weights, points) -> (losses
#: [Kg], saved)`` and ``backward(z, positives, alphas, saved, grad [Kg], out)``, which writes the
#: gradient w.r.t. ``z`` into ``out``.  A loss class joins by naming one in ``fused_kind``
#: (:func:`register_fused_kernel` adds a kind).
FUSED_KERNELS: dict[str, tuple] = {
    "bce": (_bce_kernel, lambda z, pos, alphas, saved, g, out: _bce_backward(z, *pos, alphas, *saved, g, out)),
    "ce": (_ce_kernel, lambda z, pos, alphas, saved, g, out: _ce_backward(z, *pos, alphas, *saved, g, out)),
    "lr": (_lr_kernel, lambda z, pos, alphas, saved, g, out: _lr_backward(z, *pos, alphas, saved, g, out)),
    "lr2022": (_lr2022_kernel, lambda z, pos, alphas, saved, g, out: _lr2022_backward(z, *pos, alphas, saved, g, out)),
}


def register_fused_kernel(kind: str, forward, backward) -> None:
    """Make ``fused_kind = kind`` a fused loss (see :data:`FUSED_KERNELS`; test it against autograd in float64)."""
    if kind in FUSED_KERNELS and FUSED_KERNELS[kind] != (forward, backward):
        raise TypeError(f"fused kernel {kind!r} is registered twice")
    FUSED_KERNELS[kind] = (forward, backward)


class _FusedLosses(torch.autograd.Function):
    """Per-slice losses of ``scores [K, B, E]`` → ``[K]``, with a hand-written gradient."""

    @staticmethod
    def forward(ctx, scores, ks, rows, cols, groups, weights=None):
        # groups: ((kind, members, alphas), ...) with kind a key of FUSED_KERNELS; weights: see stacked_losses
        stack = scores.shape[0]
        points = scores.shape[1] if weights is None else weights.sum()  # a tensor: no host sync
        losses = scores.new_empty(stack)
        plan = []
        for kind, members, alphas in groups:
            z, where = _group_view(scores, members)
            pos = _local_positives(ks, rows, cols, members, stack, len(members) == stack)
            value, saved = FUSED_KERNELS[kind][0](z, pos, alphas, weights, points)
            losses[where] = value.to(scores.dtype)
            plan.append((kind, members, alphas, where, z, pos, saved))
        ctx.plan = plan
        ctx.shape = scores.shape
        ctx.save_for_backward(scores)  # not used directly: lets autograd detect in-place changes
        return losses

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_losses):
        ctx.saved_tensors  # raises if the scores were modified in place since forward
        grad = grad_losses.new_empty(ctx.shape)
        for kind, members, alphas, where, z, pos, saved in ctx.plan:
            g = grad_losses[where]
            # write straight into the gradient when the group is a view; else fill a copy
            out = grad[where] if isinstance(where, slice) else torch.empty_like(z)
            FUSED_KERNELS[kind][1](z, pos, alphas, saved, g, out)
            if not isinstance(where, slice):
                grad.index_copy_(0, where, out)
        ctx.plan = None  # free the saved score views
        return grad, None, None, None, None, None


def stacked_losses(
    losses: list,
    scores: torch.Tensor,
    ks: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    row_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Losses of ``K`` stacked configurations: ``losses[k]`` on ``scores[k]`` → ``[K]``.

    Positive cells are ``(ks, rows, cols)`` into ``scores [K, B, |E|]`` (cell ``(k, b, e)`` is a
    true tail of slice ``k``'s row ``b``; no cell twice).  Configurations of one kind (BCE/LS, or
    LR) are computed together.  Losses of other types are called one slice at a time.

    ``row_weights [B]`` (BCE and softmax CE, with or without LS): score row ``b`` stands for ``row_weights[b]`` data points
    with the same query — 1vsAll data points that share ``(h, r)`` have identical score rows — and
    its positives are the union of theirs.  The loss is then the mean over ``Σ row_weights`` data
    points, exactly as if every data point had its own row.
    """
    if row_weights is not None and not all(getattr(fn, "weightable", False) for fn in losses):
        raise ValueError("row_weights are supported for BCE and softmax cross-entropy (with label smoothing) only")
    if all(getattr(fn, "fused_kind", None) in FUSED_KERNELS for fn in losses):
        groups = []
        for kind in dict.fromkeys(fn.fused_kind for fn in losses):  # one group per kind, in order of appearance
            members = [k for k, fn in enumerate(losses) if fn.fused_kind == kind]
            groups.append((kind, members, tuple(getattr(losses[k], losses[k].fused_param) for k in members)))
        return _FusedLosses.apply(scores, ks, rows, cols, tuple(groups), row_weights)
    values = []
    for k, fn in enumerate(losses):
        mine = ks == k
        values.append(fn(scores[k], rows[mine], cols[mine]))
    return torch.stack(values)


