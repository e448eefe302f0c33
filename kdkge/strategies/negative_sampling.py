"""Negative sampling (Bordes et al. 2013; the scalable alternative to 1vsAll/KvsAll)."""

from __future__ import annotations

import torch

from ..data import TrainingLabels, one_vs_all
from .all_tails import AllTailsTargets
from .base import TrainingStrategy, register

#: Negative sampling draws k tails uniformly from |E| entities (with replacement); k above this
#: multiple of |E| only repeats them and is refused.
MAX_NEGATIVES_PER_ENTITY = 10


class NegativeSampler:
    """Candidate tails ``[true tail, k uniform negatives]`` of a batch and their positive cells."""

    def __init__(self, num_entities: int, k: int, stack: int, device: torch.device):
        self.num_entities, self.k, self.stack, self.device = num_entities, k, stack, device

    def candidates(self, true_tails: torch.Tensor, generators: list[torch.Generator], slot: list[int]) -> torch.Tensor:
        """``[B, 1 + k]`` (one generator) or ``[B, K, 1 + k]`` (slice ``k`` draws from ``generators[slot[k]]``).

        Drawn on the CPU generators (the same negatives on any device), one transfer per step.
        """
        batch = true_tails.shape[0]
        drawn = [torch.randint(self.num_entities, (batch, self.k), generator=g) for g in generators]
        if len(generators) == 1:
            return torch.cat([true_tails.unsqueeze(-1), drawn[0].to(self.device)], dim=-1)
        per_slice = torch.stack([drawn[slot[k]] for k in range(self.stack)], dim=1).to(self.device)  # [B, K, k]
        return torch.cat([true_tails.unsqueeze(-1), per_slice], dim=-1)

    def positive_cells(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The true tail is column 0 of every row of every slice."""
        ks = torch.arange(self.stack, device=self.device).repeat_interleave(batch)
        rows = torch.arange(batch, device=self.device).repeat(self.stack)
        return ks, rows, torch.zeros_like(rows)


@register
class NegativeSampling(TrainingStrategy):
    """Each 1vsAll data point ``(h, r, t)`` scores its true tail and ``k`` entities drawn uniformly
    (with replacement, not filtered: the usual approximation on large graphs, where a drawn entity
    is rarely a true tail) instead of all ``|E|``; the loss sees a ``[K, B, 1 + k]`` score tensor
    with the positive in column 0.  The negatives are drawn on the batch-order generator after the
    epoch's permutation, so a run (and its resume) is reproducible.  ``sparse`` trains the
    embeddings with sparse gradients and :class:`kdkge.training.SparseAdam`.
    """

    name = "negsamp"

    def __init__(self, num_negatives: int = 32, sparse: bool = False):
        self.num_negatives, self.sparse = num_negatives, sparse

    @classmethod
    def from_spec(cls, spec) -> "NegativeSampling":
        return cls(spec.num_negatives, spec.sparse)

    @classmethod
    def check(cls, spec) -> None:
        if not isinstance(spec.num_negatives, int) or spec.num_negatives < 1:
            raise ValueError(f"num_negatives={spec.num_negatives!r} must be a positive integer (negatives per data point)")

    def check_graph(self, kg) -> None:
        if self.num_negatives > MAX_NEGATIVES_PER_ENTITY * kg.num_entities:
            raise ValueError(
                f"strategy.num_negatives={self.num_negatives} is more than {MAX_NEGATIVES_PER_ENTITY}× the {kg.num_entities} "
                f"entities of {kg.name}: negatives are drawn uniformly from the entities (with replacement), so beyond |E| they "
                f"only repeat; use at most {kg.num_entities} (or strategy=1vsall, which scores all {kg.num_entities})"
            )

    def training_bytes(self, stack, batch, entities, dim, stored_width, size):
        """``[K, batch, 1 + k]`` scores (4 copies) and the gathered ``[batch, K, 1 + k, w]`` tail vectors."""
        candidates = 1 + self.num_negatives
        return 4 * stack * batch * candidates * size + 2 * batch * stack * candidates * stored_width * size

    def labels(self, triples: torch.Tensor) -> TrainingLabels:
        return one_vs_all(triples)  # 1vsAll data points; the tails are sampled per step

    def scorer(self, model, labels, losses, generators, slot, device):
        stack = len(losses)
        if not AllTailsTargets(labels, stack).one_per_point:
            raise ValueError("negative sampling needs one true tail per data point (1vsAll labels)")
        negatives = NegativeSampler(model.num_entities, self.num_negatives, stack, device)

        def score(idx, per_slice, h, r):
            tails = negatives.candidates(labels.tails[idx], generators, slot)
            scores = model.score_tails_stacked(h, r, tails)  # [K, B, 1 + k]
            ks, rows, cols = negatives.positive_cells(len(idx))
            return scores, ks, rows, cols, None

        return score
