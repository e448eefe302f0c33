"""Kronecker products (Sec. 3.4, Eq. 4 and Eq. 5)."""

from __future__ import annotations

import math

import torch


def exact_sqrt(d: int, what: str = "embedding size") -> int:
    """``√d`` for a perfect square ``d``; anything else is an error naming the nearest squares.

    KD models store √d-wide vectors and rebuild d-wide ones as ``x ⊗ x``, so d must be a square.
    Silent flooring (``int(sqrt(d))``) would train a different model than the one asked for.
    """
    if not isinstance(d, int) or isinstance(d, bool) or d <= 0:
        raise ValueError(f"{what} d={d!r} must be a positive integer")
    root = math.isqrt(d)
    if root * root != d:
        raise ValueError(
            f"{what} d={d} is not a perfect square, which Kronecker models need (d = √d·√d): "
            f"nearest squares are {root * root} = {root}² and {(root + 1) ** 2} = {root + 1}²"
        )
    return root


def batched_kron(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Kronecker product of vectors: ``[..., m] ⊗ [..., n] -> [..., m·n]`` (Eq. 4).

    Entry ``i·n + j`` is ``a_i · b_j``, the same order as ``torch.kron`` on 1-D inputs.
    """
    return (a.unsqueeze(-1) * b.unsqueeze(-2)).flatten(-2)


def kron_linear(X: torch.Tensor, Z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply ``(X ⊗ Z)`` to ``x`` without forming the Kronecker matrix (Eq. 5, Tahaei et al. 2021).

    ``X: [m1, n1]``, ``Z: [m2, n2]``, ``x: [..., n1·n2]`` → ``[..., m1·m2]``.
    With x reshaped row-major into ``[n1, n2]`` (the ``R`` of Eq. 5), ``(X ⊗ Z) x = vec(X R(x) Zᵀ)``,
    which is Eq. 5's ``V(Z R(x) Xᵀ)`` written for row-major (PyTorch) vectorisation.
    Costs ``O(n1·n2·(m1 + m2))`` instead of ``O(m1·m2·n1·n2)``.
    """
    m1, n1 = X.shape
    m2, n2 = Z.shape
    mat = x.reshape(*x.shape[:-1], n1, n2)
    return (X @ mat @ Z.transpose(0, 1)).reshape(*x.shape[:-1], m1 * m2)
