"""Strategies that score every entity: 1vsAll (the paper's, Sec. 3.2/5.1) and KvsAll."""

from __future__ import annotations

import torch

from ..data import TrainingLabels, k_vs_all, one_vs_all
from .base import TrainingStrategy, register


class AllTailsTargets:
    """Positive cells ``(ks, rows, cols)`` of a step's ``[K, B, |E|]`` score tensor, built on the device.

    1vsAll (one tail per data point) needs no offsets arithmetic: rows are ``0…B−1`` and the columns
    are the tails of the batch.  Slices that share a batch share its cells, repeated per slice.
    """

    def __init__(self, labels: TrainingLabels, stack: int, batch_size: int = 0, dtype: torch.dtype = torch.float32):  # batch_size: unused
        self.labels, self.stack, self.dtype = labels, stack, dtype
        device = labels.queries.device
        n = len(labels)
        self.one_per_point = len(labels.tails) == n and torch.equal(labels.offsets, torch.arange(n + 1, device=device))
        self.arange = torch.arange(n, device=device)
        self.slices = torch.arange(stack, device=device)
        # one integer per query (h, r): data points with equal keys have identical score rows
        self.query_key = labels.queries[:, 0] * (int(labels.queries[:, 1].max()) + 1 if n else 1) + labels.queries[:, 1]

    def deduplicated(self, idx: torch.Tensor):
        """1vsAll batch ``idx`` with one score row per distinct query ``(h, r)``.

        Returns ``(representatives, weights, ks, rows, cols)``: the batch row scored for each
        distinct query, how many data points share it, and the positive cells (every data point's
        own tail, in the row of its query; distinct triples give distinct cells).
        """
        distinct, inverse = torch.unique(self.query_key[idx], return_inverse=True)
        representatives = torch.empty(len(distinct), dtype=torch.long, device=idx.device)
        representatives.scatter_(0, inverse, self.arange[: len(idx)])  # any row of the query will do
        weights = torch.bincount(inverse, minlength=len(distinct)).to(self.dtype)
        cols = self.labels.tails[idx]
        if self.stack == 1:
            return representatives, weights, torch.zeros_like(inverse), inverse, cols
        ks = self.slices.repeat_interleave(len(inverse))
        return representatives, weights, ks, inverse.repeat(self.stack), cols.repeat(self.stack)

    def of_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.one_per_point:
            return self.arange[: len(idx)], self.labels.tails[idx]
        return self.labels.batch_targets(idx)

    def shared(self, idx: torch.Tensor):
        """All slices train on batch ``idx``."""
        rows, cols = self.of_batch(idx)
        if self.stack == 1:
            return torch.zeros_like(rows), rows, cols
        ks = self.slices.repeat_interleave(len(rows))
        return ks, rows.repeat(self.stack), cols.repeat(self.stack)

    def per_slice(self, idx_per_slice: list[torch.Tensor]):
        """Slice ``k`` trains on batch ``idx_per_slice[k]`` (stacked seeds)."""
        ks, rows, cols = [], [], []
        cache: dict[int, tuple] = {}
        for k, idx in enumerate(idx_per_slice):
            key = id(idx)
            if key not in cache:
                cache[key] = self.of_batch(idx)
            r, c = cache[key]
            ks.append(self.slices[k].expand(len(r)))
            rows.append(r)
            cols.append(c)
        return torch.cat(ks), torch.cat(rows), torch.cat(cols)


@register
class OneVsAll(TrainingStrategy):
    """1vsAll (Lacroix et al. 2018): one data point ``((h, r), {t})`` per training triple and its
    reciprocal, scored against all entities.

    Data points that share ``(h, r)`` in a batch have identical score rows (batch norm sees the
    whole batch; every later op is row-wise): when the losses allow it (``weightable``) each distinct
    query is scored once and its loss terms weighted by its multiplicity.  Same loss and gradients;
    UMLS batches hold ~63 % distinct queries.
    """

    name = "1vsall"

    def labels(self, triples: torch.Tensor) -> TrainingLabels:
        return one_vs_all(triples)

    def scorer(self, model, labels, losses, generators, slot, device):
        stack = len(losses)
        targets = AllTailsTargets(labels, stack, dtype=next(model.parameters()).dtype)
        dedup = targets.one_per_point and len(generators) == 1 and all(getattr(fn, "weightable", False) for fn in losses)

        def score(idx, per_slice, h, r):
            representatives = weights = None
            if dedup:
                representatives, weights, ks, rows, cols = targets.deduplicated(idx)
            elif len(generators) == 1:
                ks, rows, cols = targets.shared(idx)
            else:
                ks, rows, cols = targets.per_slice(per_slice)
            scores = model.score_all_tails_stacked(h, r, rows=representatives)  # [K, B or distinct, |E|]
            return scores, ks, rows, cols, weights

        return score


@register
class KvsAll(OneVsAll):
    """KvsAll (Dettmers et al. 2018): one data point per distinct ``(h, r)`` with every training tail
    as a positive, scored against all entities."""

    name = "kvsall"
    one_tail_per_point = False

    def labels(self, triples: torch.Tensor) -> TrainingLabels:
        return k_vs_all(triples)
