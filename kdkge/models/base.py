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


class _SparseRows(torch.autograd.Function):
    """Rows ``weight[idx]`` (``idx [N]``, or ``[N, K]`` with a row per slice) whose gradient is a
    sparse COO tensor holding only the looked-up rows, for :class:`kdkge.training.LazyAdam`.

    ``nn.Embedding(sparse=True)`` needs a 2-D weight, and autograd cannot reshape a sparse gradient
    back to the ``[num, K, w]`` parameter; this writes it in the parameter's own shape.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx)
        ctx.shape = weight.shape
        if idx.dim() == 1:
            return weight.index_select(0, idx)
        return weight[idx, torch.arange(weight.shape[1], device=idx.device)]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (idx,) = ctx.saved_tensors
        stack = ctx.shape[1]
        rows = idx.reshape(-1) if idx.dim() == 2 else idx.repeat_interleave(stack)
        slices = torch.arange(stack, device=idx.device).repeat(len(rows) // stack)
        # one layout for both index shapes (autograd adds the head and tail lookups' gradients):
        # sparse over (row, slice), dense over width
        indices = torch.stack([rows, slices])
        values = grad.reshape(-1, grad.shape[-1])
        return torch.sparse_coo_tensor(indices, values, ctx.shape, check_invariants=False), None


def xavier_std(num: int, width: int) -> float:
    """Standard deviation of ``xavier_normal_`` on a ``[num, width]`` matrix: ``√(2 / (fan_in + fan_out))``
    with fan_in = width, fan_out = num."""
    return math.sqrt(2.0 / (num + width))


class StackedEmbedding(nn.Module):
    """``num`` vectors of width ``width`` for each of ``stack`` configurations: weight ``[num, K, w]``.

    ``sparse = True`` makes lookups return sparse gradients (only the rows a batch touched), for
    negative sampling on large graphs with :class:`kdkge.training.LazyAdam`; :meth:`all` stays dense.
    """

    def __init__(self, num: int, width: int, stack: int = 1):
        super().__init__()
        self.num, self.width, self.stack = num, width, stack
        self.sparse = False
        self.weight = nn.Parameter(torch.empty(num, stack, width))

    def reset_parameters(self, generators: list[torch.Generator]) -> None:
        """Xavier-normal per slice (the paper's code: ``xavier_normal_`` on each embedding matrix).

        Slice k draws from ``generators[k]``, so a stacked model starts exactly where the
        separate run with that seed starts.
        """
        std = xavier_std(self.num, self.width)
        with torch.no_grad():
            for k, gen in enumerate(generators):
                self.weight[:, k] = torch.randn(self.num, self.width, generator=gen) * std

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx [B]`` (same rows for every slice) or ``[B, K]`` (own rows per slice) → ``[B, K, w]``.

        ``index_select`` rather than advanced indexing: its backward is an ``index_add`` into the
        gradient, about twice as fast on CPU as the serial accumulating ``index_put`` of ``weight[idx]``.
        """
        if self.sparse:
            return _SparseRows.apply(self.weight, idx)
        if idx.dim() == 1:
            return self.weight.index_select(0, idx)
        # row idx[b, k] of slice k is row idx[b, k]·K + k of the [N·K, w] view
        flat = idx * self.stack + torch.arange(self.stack, device=idx.device)
        return self.weight.view(-1, self.width).index_select(0, flat.view(-1)).view(*idx.shape, self.width)

    def all(self) -> torch.Tensor:
        return self.weight

    def slice_state(self, k: int) -> dict[str, torch.Tensor]:
        """The state of configuration ``k`` as an unstacked module's: weight ``[num, 1, w]``."""
        return {"weight": self.weight.detach()[:, k : k + 1].clone()}


class StackedBatchNorm(nn.Module):
    """Batch norm of width ``w`` per slice, on inputs ``[B, K, w]`` (Ioffe & Szegedy 2015)."""

    def __init__(self, width: int, stack: int = 1):
        super().__init__()
        self.stack = stack
        self.norm = nn.BatchNorm1d(width * stack)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.reshape(x.shape[0], -1)).view_as(x)

    def slice_state(self, k: int) -> dict[str, torch.Tensor]:
        """The state of configuration ``k``: channels ``k·w … (k+1)·w − 1`` of every ``[K·w]`` vector
        (weight, bias, running mean and variance); the shared batch counter as it is."""
        return {f"norm.{key}": (t.view(self.stack, -1)[k] if t.dim() == 1 else t).clone()
                for key, t in self.norm.state_dict().items()}


class KGEModel(nn.Module):
    """Base class: ``score(h, r, t) = ⟨query(h, r), tail(t)⟩`` for ``stack`` configurations.

    Subclasses set ``name`` and implement :meth:`query` and :meth:`tail_embeddings`.
    :meth:`build` (what :func:`kdkge.models.build_model` calls) records the extra constructor
    arguments in :attr:`options`, so that :meth:`unstack` can build the same model with ``stack=1``.
    """

    name: str = ""

    def __init__(self, num_entities: int, num_relations: int, dim: int, stack: int = 1):
        super().__init__()
        self.num_entities, self.num_relations, self.dim, self.stack = num_entities, num_relations, dim, stack
        self.options: dict = {}  # the model's extra constructor arguments (set by build)

    @classmethod
    def build(cls, num_entities: int, num_relations: int, dim: int, stack: int = 1, **options) -> "KGEModel":
        """``cls(num_entities, num_relations, dim, stack, **options)``, remembering ``options``."""
        model = cls(num_entities, num_relations, dim, stack=stack, **options)
        model.options = dict(options)
        return model

    def unstack(self, k: int) -> "KGEModel":
        """Configuration ``k`` of a stacked model as an ordinary model (same weights and statistics).

        Stacked modules slice themselves (:meth:`StackedEmbedding.slice_state`,
        :meth:`StackedBatchNorm.slice_state`); a model's own parameters and buffers are sliced by
        :meth:`slice_own_tensor`.  ``stack == 1`` returns the model itself.
        """
        if self.stack == 1:
            return self
        single = type(self).build(self.num_entities, self.num_relations, self.dim, stack=1, **self.options)
        single.to(next(self.parameters()))  # same device and dtype before copying the weights
        state = {}
        for prefix, module in self.named_modules():
            if isinstance(module, (StackedEmbedding, StackedBatchNorm)):
                state.update({f"{prefix}.{key}": value for key, value in module.slice_state(k).items()})
        for key, tensor in self.state_dict().items():
            if key not in state:
                state[key] = self.slice_own_tensor(key, tensor.detach(), k)
        single.load_state_dict(state)
        return single

    def slice_own_tensor(self, key: str, tensor: torch.Tensor, k: int) -> torch.Tensor:
        """Configuration ``k`` of a parameter or buffer the model holds outside the stacked modules.

        The default follows the embeddings' layout: the stack axis is axis 1 (``[N, K, ...]``, e.g.
        scaled_distmult's ``[|R|, K, 1]`` temperatures); a scalar is shared.  A model with another
        layout overrides this.
        """
        if tensor.dim() == 0:
            return tensor.clone()
        if tensor.dim() < 2 or tensor.shape[1] != self.stack:
            raise ValueError(f"{type(self).__name__}.{key} {tuple(tensor.shape)} has no stack axis at 1: "
                             "override slice_own_tensor to say how it unstacks")
        return tensor[:, k : k + 1].clone()

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

    def tail_vectors(self, idx: torch.Tensor) -> torch.Tensor:
        """Tail vectors of the entities ``idx`` (``[N]``, or ``[N, K]`` per slice): ``[N, K, w]``.

        Rows of :meth:`tail_embeddings` looked up without building the whole matrix.  The default
        assumes the contract above (tails are the raw entity embedding ``self.entities``); a model
        with other tails overrides it (``tests/test_models.py`` checks the two agree for every model).
        """
        return self.entities(idx)

    # --- large graphs ---------------------------------------------------------------------
    def use_sparse_gradients(self, enabled: bool = True) -> "KGEModel":
        """Embedding lookups return sparse gradients (negative sampling with :class:`kdkge.training.SparseAdam`)."""
        for module in self.modules():
            if isinstance(module, StackedEmbedding):
                module.sparse = enabled
        return self

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The embedding matrices (the parameters that get sparse gradients); the rest are batch norms."""
        return [m.weight for m in self.modules() if isinstance(m, StackedEmbedding)]

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

    def score_tails_stacked(self, h: torch.Tensor, r: torch.Tensor, tails: torch.Tensor) -> torch.Tensor:
        """Scores of ``(h, r, x)`` for the candidate tails ``x`` of each data point: ``[K, B, n]``.

        ``tails [B, n]`` (the same candidates for every slice) or ``[B, K, n]`` (own candidates per
        slice, for stacked seeds).  Negative sampling (Sec. 3.2's alternative to 1vsAll) scores the
        true tail and ``k`` sampled entities, ``n = 1 + k``, instead of all ``|E|`` entities; the
        score of a candidate is the same ``⟨q(h, r), t⟩`` as in :meth:`score_all_tails_stacked`.
        """
        if self.dense_candidates(tails.shape[-1]):  # few entities: one GEMM over all of them, then pick the candidates
            scores = self.score_all_tails_stacked(h, r)  # [K, B, |E|]
            picks = tails.unsqueeze(0).expand(scores.shape[0], -1, -1) if tails.dim() == 2 else tails.permute(1, 0, 2)
            return scores.gather(2, picks)
        q = self.query(h, r)  # [B, K, w]
        batch, stack = q.shape[0], q.shape[1]
        if tails.dim() == 2:
            vectors = self.tail_vectors(tails.reshape(-1)).view(batch, tails.shape[1], stack, -1)
        else:
            n = tails.shape[2]
            vectors = self.tail_vectors(tails.permute(0, 2, 1).reshape(-1, stack)).view(batch, n, stack, -1)
        if stack == 1:  # [B, n, w] × [B, w, 1]: no transposed copy of the candidates
            return torch.bmm(vectors.squeeze(2), q.transpose(1, 2)).squeeze(-1).unsqueeze(0)
        return (vectors * q.unsqueeze(1)).sum(-1).permute(2, 0, 1)  # [B, n, K] → [K, B, n]

    #: score all entities and gather the candidates when ``|E| ≤ DENSE_CANDIDATES·n`` (``n`` candidates per row):
    #: one ``[B, w]×[w, |E|]`` GEMM is far cheaper on CPU than gathering ``[B, n, w]`` vectors and ``n``-long batched
    #: dot products (UMLS, n = 33: 19× per batch, ``results/benchmarks.md``); the same scores (tested in float64).
    DENSE_CANDIDATES = 16

    def dense_candidates(self, n: int) -> bool:
        return not any(getattr(m, "sparse", False) for m in self.modules()) and self.num_entities <= self.DENSE_CANDIDATES * n

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
