"""ComplEx (Trouillon et al. 2016), the first multiplicative model beyond DistMult (paper, Sec. 2)."""

from __future__ import annotations

import torch

from .base import KGEModel, StackedBatchNorm, StackedEmbedding
from . import register


def complex_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise product of complex vectors stored as ``[re | im]`` halves of the last axis."""
    a_re, a_im = a.chunk(2, dim=-1)
    b_re, b_im = b.chunk(2, dim=-1)
    return torch.cat([a_re * b_re - a_im * b_im, a_re * b_im + a_im * b_re], dim=-1)


@register
class ComplEx(KGEModel):
    r"""ComplEx: :math:`φ(h, r, t) = \mathrm{Re}(\sum_i h_i r_i \bar t_i)` with h, r, t ∈ ℂ^d.

    ``dim`` is the number of complex coordinates d; each vector is stored as 2d reals
    ``[re | im]``.  Since ``Re(h r t̄) = Re(h r)·Re(t) + Im(h r)·Im(t)``, the score is the real
    inner product of the query ``q = h ∘ r`` (complex product, ``[re | im]``) with ``[t_re | t_im]``.

    Batch norm as in the paper's code (dice-embeddings ``ComplEx``): on the real and imaginary
    parts of head and relation (here one 2d-wide batch norm each: batch norm is per channel);
    tails raw.  Parameters: ``(|E| + |R| + 4)·2d``.
    """

    name = "complex"

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1):
        super().__init__(num_entities, num_relations, dim, stack)
        self.entities = StackedEmbedding(num_entities, 2 * dim, stack)
        self.relations = StackedEmbedding(num_relations, 2 * dim, stack)
        self.norm_head = StackedBatchNorm(2 * dim, stack)
        self.norm_relation = StackedBatchNorm(2 * dim, stack)

    @property
    def stored_width(self) -> int:
        return 2 * self.dim

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return complex_product(self.norm_head(self.entities(h)), self.norm_relation(self.relations(r)))

    def tail_embeddings(self) -> torch.Tensor:
        return self.entities.all()
