"""The training loop (Sec. 5.1): Adam on the summed per-configuration losses, mini-batches of data points.

One loop trains ``K`` stacked configurations at once (``K = 1`` is an ordinary run).  Slice ``k``
shuffles with its own generator seeded ``seeds[k]``; slices that share a seed share the batch
order, so they index the same rows and the batches stay one tensor ``[B]``.

Speed (see ``results/benchmarks.md``): a step is a handful of tensor ops — gather the batch's
queries and positive cells from device-resident labels, score all tails, one fused loss for all
slices (:func:`kdkge.losses.stacked_losses`), backward, fused Adam.  The batch order of an epoch
is drawn on the CPU generator (so CPU and GPU runs see the same batches) and copied to the
device once per epoch; the mean losses cross to the host once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .data import TrainingLabels
from .losses import stacked_losses


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (error without a GPU), ``cuda:N`` or ``auto`` (GPU if there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} but no CUDA GPU is available here: use device=cpu or device=auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device={name!r} is not one of cpu, cuda, cuda:N, auto")
    return torch.device(name)


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """Sizes of the batches of an epoch: ``batch_size`` each, a final batch of one merged into the previous.

    Batch norm cannot normalise a single example in training mode.
    """
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if len(sizes) > 1 and sizes[-1] == 1:
        last = sizes.pop()
        sizes[-1] += last
    return sizes


def batch_order(n: int, batch_size: int, generator: torch.Generator, device: torch.device | str | None = None) -> list[torch.Tensor]:
    """A fresh random permutation of ``n`` data points split into batches (see :func:`batch_sizes`).

    The permutation is drawn on the CPU ``generator`` and copied to ``device`` in one transfer.
    """
    perm = torch.randperm(n, generator=generator)
    if device is not None:
        perm = perm.to(device)
    return list(torch.split(perm, batch_sizes(n, batch_size)))


def make_optimizer(params, lr: float, device: torch.device, sparse: bool = False):
    """Adam (Kingma & Ba 2014).  ``fused=True`` updates all parameters in one kernel per tensor
    (≈3× faster on CPU than the default per-op loop; the same update up to float rounding).

    ``sparse=True`` (``params`` is then the model, whose embeddings give sparse gradients, see
    :meth:`kdkge.models.base.KGEModel.use_sparse_gradients`) returns a :class:`SparseAdam`.
    """
    device = torch.device(device)
    if sparse:
        return SparseAdam(params, lr, device)
    if isinstance(params, torch.nn.Module):
        params = params.parameters()
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=lr, fused=fused)


class LazyAdam(torch.optim.Optimizer):
    """The update of :class:`torch.optim.SparseAdam` ("lazy" Adam) in O(rows touched) per step.

    For the rows ``i`` of a step's sparse gradient ``g`` (coalesced), with step count ``t``::

        m_i ← m_i + (1 − β₁)(g_i − m_i)        v_i ← v_i + (1 − β₂)(g_i² − v_i)
        θ_i ← θ_i − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m_i / (√v_i + ε)

    Other rows keep their value and moments.  ``torch.optim.SparseAdam`` computes the same but
    adds sparse tensors into the dense moments, which costs O(|E|·w) per step on CPU (measured:
    80 % of a KD-DistMult step at |E| = 10⁶); here the touched rows are gathered, updated and
    written back (tested equal to SparseAdam in float64).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if not param.grad.is_sparse:
                    raise RuntimeError("LazyAdam takes sparse gradients (KGEModel.use_sparse_gradients)")
                grad = param.grad.coalesce()
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                sparse_dims = grad.sparse_dim()
                indices = grad.indices()
                rows = indices[0]
                for d in range(1, sparse_dims):  # flat row of the [∏ sparse sizes, dense numel] view
                    rows = rows * param.shape[d] + indices[d]
                width = param[(0,) * sparse_dims].numel()
                values = grad.values().reshape(len(rows), width)
                flat = lambda t: t.view(-1, width)  # noqa: E731
                m, v, theta = flat(state["exp_avg"]), flat(state["exp_avg_sq"]), flat(param)
                m_rows = m.index_select(0, rows)
                v_rows = v.index_select(0, rows)
                m_rows.add_(values.sub(m_rows).mul_(1 - beta1))
                v_rows.add_(values.pow(2).sub_(v_rows).mul_(1 - beta2))
                m.index_copy_(0, rows, m_rows)
                v.index_copy_(0, rows, v_rows)
                step = state["step"]
                step_size = group["lr"] * math.sqrt(1 - beta2**step) / (1 - beta1**step)
                theta.index_add_(0, rows, m_rows.div_(v_rows.sqrt_().add_(group["eps"])), alpha=-step_size)


class SparseAdam:
    """Adam for negative sampling on large graphs: only the embedding rows a batch touched are updated.

    :class:`LazyAdam` (the update of ``torch.optim.SparseAdam``) on the embedding matrices — a row's
    moments and value change only in the steps whose batch looked it up, so a step costs O(rows
    touched), not O(|E|·w) — and ordinary Adam on the batch norms.  On a small graph where every row is touched in
    every step it is the same as Adam; otherwise rows not looked up keep their moments unchanged
    instead of decaying them.  Has the optimizer methods the training loop and checkpoints use.
    """

    def __init__(self, model: torch.nn.Module, lr: float, device: torch.device):
        embeddings = model.embedding_parameters()
        ids = {id(p) for p in embeddings}
        rest = [p for p in model.parameters() if id(p) not in ids]
        self.optimizers = [LazyAdam(embeddings, lr=lr)]
        if rest:
            self.optimizers.append(make_optimizer(rest, lr, device))

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict:
        return {"sparse_adam": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        if "sparse_adam" not in state or len(state["sparse_adam"]) != len(self.optimizers):
            raise ValueError("the saved optimizer state is not a sparse-Adam state (was the run trained with loss.sparse=false?)")
        for opt, saved in zip(self.optimizers, state["sparse_adam"]):
            opt.load_state_dict(saved)


class NonFiniteLoss(FloatingPointError):
    """The loss became NaN or infinite; the run cannot continue."""


class _BatchTargets:
    """Positive cells ``(ks, rows, cols)`` of a step's ``[K, B, |E|]`` score tensor, built on the device.

    1vsAll (one tail per data point) needs no offsets arithmetic: rows are ``0…B−1`` and the columns
    are the tails of the batch.  Slices that share a batch share its cells, repeated per slice.
    """

    def __init__(self, labels: TrainingLabels, stack: int, batch_size: int, dtype: torch.dtype = torch.float32):
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


class _NegativeSampler:
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


def train_epochs(
    model: torch.nn.Module,
    labels: TrainingLabels,
    losses: list[Callable],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seeds: list[int],
    device: torch.device,
    start_epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    generators: list[torch.Generator] | None = None,
    on_epoch_end: Callable | None = None,
    progress: bool = True,
    num_negatives: int = 0,
    sparse: bool = False,
) -> torch.optim.Optimizer:
    """Train for epochs ``start_epoch + 1 … epochs``.

    ``num_negatives = k > 0`` trains by negative sampling: each 1vsAll data point ``(h, r, t)``
    scores its true tail and ``k`` entities drawn uniformly (with replacement, not filtered: the
    usual approximation on large graphs, where a drawn entity is rarely a true tail) instead of all
    ``|E|``; the loss sees a ``[K, B, 1 + k]`` score tensor with the positive in column 0.  The
    negatives are drawn on the batch-order generator after the epoch's permutation, so a run
    (and its resume) is reproducible.  ``sparse`` (negative sampling only) trains the embeddings
    with sparse gradients and :class:`SparseAdam`.

    ``losses[k]`` is configuration ``k``'s loss.  ``on_epoch_end(epoch, mean_losses, optimizer,
    generators)`` runs after every epoch (metrics, checkpoints); ``generators`` are the batch-order
    generators, whose state a checkpoint must keep for an exact resume.
    """
    stack = len(losses)
    if len(seeds) != stack:
        raise ValueError(f"need one seed per configuration: {len(seeds)} seeds for {stack} losses")
    device = torch.device(device)
    if sparse and not num_negatives:
        raise ValueError("sparse gradients need negative sampling (num_negatives > 0): 1vsAll/KvsAll touch every entity")
    if sparse:
        model.use_sparse_gradients()
    if optimizer is None:
        optimizer = make_optimizer(model, lr, device, sparse=sparse)
    distinct = sorted(set(seeds))
    if generators is None:
        generators = [torch.Generator().manual_seed(int(s)) for s in distinct]  # CPU: same batches on any device
    slot = [distinct.index(s) for s in seeds]
    labels = labels.to(device)  # constant data: copied once, not per batch
    heads, relations = labels.queries[:, 0].contiguous(), labels.queries[:, 1].contiguous()
    targets = _BatchTargets(labels, stack, batch_size, dtype=next(model.parameters()).dtype)
    n = len(labels)
    # 1vsAll data points that share (h, r) in a batch have identical score rows (batch norm sees
    # the whole batch; every later op is row-wise): score each distinct query once, weight its BCE
    # or cross-entropy terms by its multiplicity.  Same loss and gradients; UMLS batches hold ~63 % distinct queries.
    dedup = targets.one_per_point and len(generators) == 1 and all(getattr(fn, "weightable", False) for fn in losses)
    if num_negatives:
        if not targets.one_per_point:
            raise ValueError("negative sampling needs one true tail per data point (1vsAll labels)")
        dedup = False
        negatives = _NegativeSampler(model.num_entities, num_negatives, stack, device)
    model.train()
    bar = tqdm(range(start_epoch + 1, epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        orders = [batch_order(n, batch_size, g, device) for g in generators]
        epoch_loss = torch.zeros(stack, dtype=torch.float64, device=device)
        for step in range(len(orders[0])):
            representatives = weights = None
            if len(generators) == 1:
                idx = orders[0][step]
            else:
                per_slice = [orders[slot[k]][step] for k in range(stack)]
                idx = torch.stack(per_slice, dim=1)  # [B, K]
            h, r = heads[idx], relations[idx]
            if num_negatives:
                tails = negatives.candidates(labels.tails[idx], generators, slot)
                scores = model.score_tails_stacked(h, r, tails)  # [K, B, 1 + k]
                ks, rows, cols = negatives.positive_cells(len(idx))
            else:
                if dedup:
                    representatives, weights, ks, rows, cols = targets.deduplicated(idx)
                elif len(generators) == 1:
                    ks, rows, cols = targets.shared(idx)
                else:
                    ks, rows, cols = targets.per_slice(per_slice)
                scores = model.score_all_tails_stacked(h, r, rows=representatives)  # [K, B or distinct, |E|]
            total = stacked_losses(losses, scores, ks, rows, cols, row_weights=weights)  # [K]
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()
            optimizer.step()
            epoch_loss.add_(total.detach(), alpha=len(idx))
        mean_loss = (epoch_loss / n).tolist()  # one host sync per epoch
        bad = [k for k, v in enumerate(mean_loss) if not math.isfinite(v)]
        if bad:
            raise NonFiniteLoss(f"training loss became {mean_loss[bad[0]]} at epoch {epoch} (configuration {bad[0]})")
        if progress:
            bar.set_postfix(loss=f"{mean_loss[0]:.4g}" if stack == 1 else [f"{v:.3g}" for v in mean_loss])
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean_loss, optimizer, generators)
    return optimizer
