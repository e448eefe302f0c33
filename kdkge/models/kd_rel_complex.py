"""KD-Rel-ComplEx: Eq. 8's Kronecker decomposition of relation embeddings, applied to ComplEx."""

from __future__ import annotations

import torch

from ..kronecker import batched_kron, exact_sqrt
from .base import KGEModel, StackedBatchNorm, StackedEmbedding
from .complex import complex_product
from . import register


@register
class KDRelComplEx(KGEModel):
    r"""KD-Rel-ComplEx: ComplEx with relations stored at √d complex coordinates.

    Construction (the paper's Sec. 4.2 applied to each part): a relation is stored as
    ``[r_re | r_im]`` with ``r_re, r_im ∈ ℝ^√d`` and rebuilt as ``[r_re ⊗ r_re | r_im ⊗ r_im]``
    (d complex coordinates); heads and tails are ordinary d-dimensional complex vectors.

    1. rebuild each distinct relation of the batch once; 2. batch-normalise head and rebuilt
    relation (2d wide each); 3. complex product; 4. real inner product with the raw tails.

    Parameters: ``|E|·2d + |R|·2√d + 8d``.
    """

    name = "kd_rel_complex"

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1):
        super().__init__(num_entities, num_relations, dim, stack)
        self.root = exact_sqrt(dim, "KD-Rel-ComplEx complex dimension")
        self.entities = StackedEmbedding(num_entities, 2 * dim, stack)
        self.relations = StackedEmbedding(num_relations, 2 * self.root, stack)
        self.norm_head = StackedBatchNorm(2 * dim, stack)
        self.norm_relation = StackedBatchNorm(2 * dim, stack)

    @property
    def stored_width(self) -> int:
        return 2 * self.dim

    def rebuilt_relations(self, r: torch.Tensor) -> torch.Tensor:
        distinct, back = torch.unique(r, return_inverse=True) if r.dim() == 1 else (r, None)
        re, im = self.relations(distinct).chunk(2, dim=-1)
        rebuilt = torch.cat([batched_kron(re, re), batched_kron(im, im)], dim=-1)
        return rebuilt if back is None else rebuilt[back]

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return complex_product(self.norm_head(self.entities(h)), self.norm_relation(self.rebuilt_relations(r)))

    def tail_embeddings(self) -> torch.Tensor:
        return self.entities.all()
