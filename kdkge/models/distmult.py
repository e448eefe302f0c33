"""DistMult (Yang et al. 2015), Eq. 6 of the paper."""

from __future__ import annotations

import torch

from .base import KGEModel, StackedBatchNorm, StackedEmbedding
from . import register


@register
class DistMult(KGEModel):
    r"""DistMult, Eq. 6: :math:`φ(h, r, t) = (h ∘ r) · t`, with the paper's batch norms.

    Following the paper's code (dice-embeddings ``DistMult.forward_k_vs_all``):

    1. look up head ``h`` and relation ``r`` (width d) and batch-normalise each;
    2. multiply element-wise and batch-normalise the product: ``q = BN(BN(h) ∘ BN(r))``;
    3. score against the raw entity matrix: ``φ = q · t``.

    Parameters: ``(|E| + |R| + 6)·d`` (three d-wide batch norms with weight and bias).
    """

    name = "distmult"

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1):
        super().__init__(num_entities, num_relations, dim, stack)
        self.entities = StackedEmbedding(num_entities, dim, stack)
        self.relations = StackedEmbedding(num_relations, dim, stack)
        self.norm_head = StackedBatchNorm(dim, stack)
        self.norm_relation = StackedBatchNorm(dim, stack)
        self.norm_product = StackedBatchNorm(dim, stack)

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return self.norm_product(self.norm_head(self.entities(h)) * self.norm_relation(self.relations(r)))

    def tail_embeddings(self) -> torch.Tensor:
        return self.entities.all()
