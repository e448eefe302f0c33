"""Shared pieces of every model: stacked representations and the bilinear scoring contract.

Every model of the DistMult family scores a triple as a bilinear form

    φ(h, r, t) = ⟨q(h, r), t⟩,

with a *query* vector q built from the head and relation representations and a *tail* vector
t read straight from the entity embedding matrix (tails are never normalised, as in the
paper's code).  A model therefore only defines :meth:`KGEModel.query` and
:meth:`KGEModel.tail_embeddings`; scoring all tails is one matrix product shared by training
(1vsAll/KvsAll, Sec. 3.2) and evaluation (Sec. 5.3).

Stacking: every parameter carries a ``stack`` axis so that ``K`` independent configurations
(e.g. the five calibration variants of Table 3) train as one batched model.  Configurations
never interact: embeddings are indexed per slice, batch norm is per channel (so a
``BatchNorm1d(K·w)`` is ``K`` independent ``BatchNorm1d(w)``), the losses are summed, and
Adam is element-wise.  ``stack=1`` is an ordinary model.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class StackedEmbedding(nn.Module):
    """``num`` vectors of width ``width`` for each of ``stack`` configurations: weight ``[num, K, w]``."""

    def __init__(self, num: int, width: int, stack: int = 1):
        super().__init__()
        self.num, self.width, self.stack = num, width, stack
        self.weight = nn.Parameter(torch.empty(num, stack, width))

    def reset_parameters(self, generators: list[torch.Generator]) -> None:
        """Xavier-normal per slice (the paper's code: ``xavier_normal_`` on each embedding matrix).

        Slice k draws from ``generators[k]``, so a stacked model starts exactly where the
        separate run with that seed starts.
        """
        std = math.sqrt(2.0 / (self.num + self.width))  # fan_in = width, fan_out = num
        with torch.no_grad():
            for k, gen in enumerate(generators):
                self.weight[:, k] = torch.randn(self.num, self.width, generator=gen) * std

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx [B]`` (same rows for every slice) or ``[B, K]`` (own rows per slice) → ``[B, K, w]``.

        ``index_select`` rather than advanced indexing: its backward is an ``index_add`` into the
        gradient, about twice as fast on CPU as the serial accumulating ``index_put`` of ``weight[idx]``.
        """
        if idx.dim() == 1:
            return self.weight.index_select(0, idx)
        # row idx[b, k] of slice k is row idx[b, k]·K + k of the [N·K, w] view
        flat = idx * self.stack + torch.arange(self.stack, device=idx.device)
        return self.weight.view(-1, self.width).index_select(0, flat.view(-1)).view(*idx.shape, self.width)

    def all(self) -> torch.Tensor:
        return self.weight


class StackedBatchNorm(nn.Module):
    """Batch norm of width ``w`` per slice, on inputs ``[B, K, w]`` (Ioffe & Szegedy 2015)."""

    def __init__(self, width: int, stack: int = 1):
        super().__init__()
        self.norm = nn.BatchNorm1d(width * stack)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.reshape(x.shape[0], -1)).view_as(x)


class KGEModel(nn.Module):
    """Base class: ``score(h, r, t) = ⟨query(h, r), tail(t)⟩`` for ``stack`` configurations.

    Subclasses set ``name`` and implement :meth:`query` and :meth:`tail_embeddings`.
    """

    name: str = ""

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1):
        super().__init__()
        self.num_entities, self.num_relations, self.dim, self.stack = num_entities, num_relations, dim, stack

    @property
    def stored_width(self) -> int:
        """Width of the stored entity vectors (√d for Kronecker entity models)."""
        return self.dim

    def reset_parameters(self, seeds: list[int]) -> None:
        """Initialise every slice from its own seed; embeddings in registration order."""
        if len(seeds) != self.stack:
            raise ValueError(f"need one seed per stacked configuration ({self.stack}), got {len(seeds)}")
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        for module in self.modules():
            if isinstance(module, StackedEmbedding):
                module.reset_parameters(generators)

    @property
    def num_parameters(self) -> int:
        """Trainable parameters of one configuration: Σ numel over parameters / stack."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad) // self.stack

    # --- what a model defines -------------------------------------------------------------
    def query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Query vectors ``[B, K, w]`` of head ids and relation ids (``[B]`` or ``[B, K]``)."""
        raise NotImplementedError

    def tail_embeddings(self) -> torch.Tensor:
        """Tail vectors of all entities, ``[|E|, K, w]``."""
        raise NotImplementedError

    # --- scoring, shared ------------------------------------------------------------------
    def score_all_tails_stacked(self, h: torch.Tensor, r: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of ``(h, r, x)`` for every entity x and every slice: ``[K, B, |E|]``.

        ``rows`` (optional) scores only those rows of the batch, ``[K, len(rows), |E|]``, while the
        queries — and so the batch-norm statistics of training mode — are still computed over the
        whole batch.  Training uses it to score each distinct ``(h, r)`` of a 1vsAll batch once.
        """
        q = self.query(h, r)
        if rows is not None:
            q = q.index_select(0, rows)
        q = q.transpose(0, 1)  # [K, B, w]
        tails = self.tail_embeddings().permute(1, 2, 0)  # [K, w, |E|]
        return torch.bmm(q, tails)

    def score_all_tails(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Scores of ``(h, r, x)`` for every entity x: ``[B, |E|]`` (unstacked models)."""
        self._require_single()
        return self.score_all_tails_stacked(h, r)[0]

    def score_triples(self, h: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Scores ``φ(h, r, t)`` of single triples: ``[B]`` (unstacked models)."""
        self._require_single()
        q = self.query(h, r)[:, 0]
        return (q * self.tail_embeddings()[t, 0]).sum(-1)

    def _require_single(self) -> None:
        if self.stack != 1:
            raise ValueError("this method is for unstacked models; use score_all_tails_stacked")
