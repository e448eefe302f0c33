"""KD-ComplEx: Eq. 9's Kronecker decomposition of entity and relation embeddings, applied to ComplEx."""

from __future__ import annotations

import torch

from ..kronecker import batched_kron, exact_sqrt
from .base import KGEModel, StackedBatchNorm, StackedEmbedding
from . import register


@register
class KDComplEx(KGEModel):
    r"""KD-ComplEx: ComplEx with entities and relations stored at √d complex coordinates.

    Construction (Eq. 9 applied to each part): stored ``h = [h_re | h_im]``, ``r = [r_re | r_im]``
    with parts in ℝ^√d are batch-normalised and rebuilt part-wise, ``H_re = h_re ⊗ h_re``,
    ``H_im = h_im ⊗ h_im`` (likewise R), giving d complex coordinates.  Their complex product
    ``Q = H ∘ R`` is reshaped part-wise to √d × √d matrices whose rows are summed and scored
    against the stored √d-wide tail: ``φ = Σ_i R(Q_re)_i · t_re + Σ_i R(Q_im)_i · t_im``.

    Closed form (as for KD-DistMult, since ``(a ⊗ a) ∘ (b ⊗ b) = (a ∘ b) ⊗ (a ∘ b)`` and
    ``Σ_i (x ⊗ x)_{ij} = ⟨x, 1⟩ x_j``)::

        q_re = ⟨h_re, r_re⟩ (h_re ∘ r_re) − ⟨h_im, r_im⟩ (h_im ∘ r_im)
        q_im = ⟨h_re, r_im⟩ (h_re ∘ r_im) + ⟨h_im, r_re⟩ (h_im ∘ r_re)

    ``explicit=True`` takes the reconstruction path (for tests).  Parameters: ``(|E| + |R| + 4)·2√d``.
    """

    name = "kd_complex"

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1, explicit: bool = False):
        super().__init__(num_entities, num_relations, dim, stack)
        self.root = exact_sqrt(dim, "KD-ComplEx complex dimension")
        self.explicit = explicit
        self.entities = StackedEmbedding(num_entities, 2 * self.root, stack)
        self.relations = StackedEmbedding(num_relations, 2 * self.root, stack)
        self.norm_head = StackedBatchNorm(2 * self.root, stack)
        self.norm_relation = StackedBatchNorm(2 * self.root, stack)

    @property
    def stored_width(self) -> int:
        return 2 * self.root

    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        h_re, h_im = self.norm_head(self.entities(h)).chunk(2, dim=-1)
        r_re, r_im = self.norm_relation(self.relations(r)).chunk(2, dim=-1)
        if self.explicit:
            H_re, H_im = batched_kron(h_re, h_re), batched_kron(h_im, h_im)
            R_re, R_im = batched_kron(r_re, r_re), batched_kron(r_im, r_im)
            shape = (self.root, self.root)
            q_re = (H_re * R_re - H_im * R_im).unflatten(-1, shape).sum(-2)
            q_im = (H_re * R_im + H_im * R_re).unflatten(-1, shape).sum(-2)
            return torch.cat([q_re, q_im], dim=-1)

        def term(a, b):
            ab = a * b
            return ab.sum(-1, keepdim=True) * ab

        return torch.cat([term(h_re, r_re) - term(h_im, r_im), term(h_re, r_im) + term(h_im, r_re)], dim=-1)

    def tail_embeddings(self) -> torch.Tensor:
        return self.entities.all()
