"""KD-DistMult, Eq. 9 of the paper: Kronecker decomposition of entity and relation embeddings."""

from __future__ import annotations

import torch
from torch import nn

from ..kronecker import batched_kron, exact_sqrt
from .base import KGEModel, StackedBatchNorm, StackedEmbedding
from . import register


@register
class KDDistMult(KGEModel):
    r"""KD-DistMult, Eq. 9: :math:`φ(h, r, t) = Σ_i R((h ⊗ h) ∘ (r ⊗ r))_i · t`, all stored at √d.

    h, r, t ∈ ℝ^√d; ``(h ⊗ h) ∘ (r ⊗ r)`` has d entries; ``R`` reshapes it to a √d × √d matrix
    ``M``, whose rows are multiplied with t and summed.

    Steps (batch-norm placement as in the paper's code):

    1. look up the √d-wide head and relation vectors and batch-normalise each (width √d);
    2. closed form: since ``(h ⊗ h) ∘ (r ⊗ r) = (h ∘ r) ⊗ (h ∘ r)``, ``M = (h ∘ r)(h ∘ r)ᵀ`` and
       ``Σ_i (M t)_i = ⟨h, r⟩ · ⟨h ∘ r, t⟩``; the query is ``q = ⟨h, r⟩ · (h ∘ r)`` (width √d), so all
       tails are scored by one ``[B, √d] × [√d, |E|]`` product, never building d-wide vectors;
    3. score against the raw √d-wide entity matrix.

    ``explicit=True`` (or any ``hidden_dropout > 0``, which acts on the rebuilt d-wide vector)
    takes the reference path: rebuild ``(h ⊗ h) ∘ (r ⊗ r)``, reshape, sum the rows.

    Related identity (Eq. 7, Kronecker on all three vectors): ``((h ⊗ h) ∘ (r ⊗ r)) · (t ⊗ t)
    = ((h ∘ r) · t)² = DistMult(h, r, t)²``.

    Parameters: ``(|E| + |R| + 4)·√d`` (two √d-wide batch norms).
    """

    name = "kd_distmult"

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int,
        stack: int = 1,
        explicit: bool = False,
        hidden_dropout: float = 0.0,
    ):
        super().__init__(num_entities, num_relations, dim, stack)
        self.root = exact_sqrt(dim, "KD-DistMult embedding size")
        self.explicit = explicit or hidden_dropout > 0
        self.entities = StackedEmbedding(num_entities, self.root, stack)
        self.relations = StackedEmbedding(num_relations, self.root, stack)
        self.norm_head = StackedBatchNorm(self.root, stack)
        self.norm_relation = StackedBatchNorm(self.root, stack)
        self.hidden_dropout = nn.Dropout(hidden_dropout)

    @property
    def stored_width(self) -> int:
        return self.root

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h_vec = self.norm_head(self.entities(h))
        r_vec = self.norm_relation(self.relations(r))
        if self.explicit:
            rebuilt = self.hidden_dropout(batched_kron(h_vec, h_vec) * batched_kron(r_vec, r_vec))
            return rebuilt.unflatten(-1, (self.root, self.root)).sum(-2)
        hr = h_vec * r_vec
        return hr.sum(-1, keepdim=True) * hr

    def tail_embeddings(self) -> torch.Tensor:
        return self.entities.all()
