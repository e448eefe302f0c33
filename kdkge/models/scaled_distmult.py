"""Scaled DistMult: KD-DistMult's closed form taken apart (issue 18: is the Kronecker structure a temperature?)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..kronecker import exact_sqrt
from . import register
from .base import KGEModel, StackedBatchNorm, StackedEmbedding

#: How the per-query scalar ``s(h, r)`` is made.
VARIANTS = ("dot", "abs", "temperature")


@register
class ScaledDistMult(KGEModel):
    r"""A √d-wide DistMult whose score is multiplied by one scalar per query:

    .. math:: φ(h, r, t) = s(h, r) · ⟨h̃ ∘ r̃, t⟩, \qquad h̃ = BN(h),\ r̃ = BN(r),\ h, r, t ∈ ℝ^{√d}

    KD-DistMult's closed form (Eq. 9) is ``⟨h̃, r̃⟩ · ⟨h̃ ∘ r̃, t⟩``: for a fixed query its tail
    ranking is that of the √d-wide DistMult ``⟨h̃ ∘ r̃, t⟩``, flipped by the sign of ``⟨h̃, r̃⟩`` —
    the Kronecker "interactions" act as one scalar per query (an inverse temperature under
    softmax cross-entropy, a logit scale under BCE).  The variants separate its two parts:

    * ``variant=dot``: ``s = ⟨h̃, r̃⟩`` — exactly KD-DistMult (tested in float64, scores and gradients);
    * ``variant=abs``: ``s = |⟨h̃, r̃⟩|`` — the scale without the sign;
    * ``variant=temperature``: ``s = softplus(τ_r)``, one learned positive temperature per
      relation (initialised to 1) — a scale that does not depend on the head.

    ``dim`` is KD-DistMult's d (a perfect square); vectors are stored at √d.  Parameters:
    ``(|E| + |R| + 4)·√d``, plus ``|R|`` for ``temperature``.
    """

    name = "scaled_distmult"

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1, variant: str = "dot"):
        super().__init__(num_entities, num_relations, dim, stack)
        if variant not in VARIANTS:
            raise ValueError(f"scaled_distmult has no variant {variant!r}: use model.options.variant=dot, abs or temperature")
        self.variant = variant
        self.root = exact_sqrt(dim, "scaled DistMult embedding size (KD-DistMult's d)")
        self.entities = StackedEmbedding(num_entities, self.root, stack)
        self.relations = StackedEmbedding(num_relations, self.root, stack)
        self.norm_head = StackedBatchNorm(self.root, stack)
        self.norm_relation = StackedBatchNorm(self.root, stack)
        if variant == "temperature":
            self.temperature = nn.Parameter(torch.full((num_relations, stack, 1), math.log(math.e - 1)))  # softplus = 1

    @property
    def stored_width(self) -> int:
        return self.root

    def scale(self, h_vec: torch.Tensor, r_vec: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """``s(h, r)`` as ``[B, K, 1]``."""
        if self.variant == "temperature":
            tau = self.temperature.index_select(0, r) if r.dim() == 1 else self.temperature[r, torch.arange(self.stack, device=r.device)]
            return F.softplus(tau)
        dot = (h_vec * r_vec).sum(-1, keepdim=True)
        return dot.abs() if self.variant == "abs" else dot

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h_vec = self.norm_head(self.entities(h))
        r_vec = self.norm_relation(self.relations(r))
        return self.scale(h_vec, r_vec, r) * (h_vec * r_vec)

    def tail_embeddings(self) -> torch.Tensor:
        return self.entities.all()
