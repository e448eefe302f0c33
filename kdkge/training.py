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
from .strategies import AllTailsTargets, NegativeSampler, NegativeSampling, OneVsAll, TrainingStrategy

#: The names these classes had before they moved to :mod:`kdkge.strategies`.
_BatchTargets, _NegativeSampler = AllTailsTargets, NegativeSampler


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
    strategy: TrainingStrategy | None = None,
    num_negatives: int = 0,
    sparse: bool = False,
) -> torch.optim.Optimizer:
    """Train for epochs ``start_epoch + 1 … epochs`` with ``strategy`` (:mod:`kdkge.strategies`).

    Without ``strategy``: all tails are scored (1vsAll or KvsAll, as ``labels`` say), or, with
    ``num_negatives = k > 0``, ``k`` sampled ones (:class:`~kdkge.strategies.NegativeSampling`,
    ``sparse`` for sparse gradients and :class:`SparseAdam`).

    ``losses[k]`` is configuration ``k``'s loss.  ``on_epoch_end(epoch, mean_losses, optimizer,
    generators)`` runs after every epoch (metrics, checkpoints); ``generators`` are the batch-order
    generators, whose state a checkpoint must keep for an exact resume.
    """
    stack = len(losses)
    if len(seeds) != stack:
        raise ValueError(f"need one seed per configuration: {len(seeds)} seeds for {stack} losses")
    device = torch.device(device)
    if strategy is None:
        strategy = _strategy_of(num_negatives, sparse)
    if strategy.sparse:
        model.use_sparse_gradients()
    if optimizer is None:
        optimizer = make_optimizer(model, lr, device, sparse=strategy.sparse)
    distinct = sorted(set(seeds))
    if generators is None:
        generators = [torch.Generator().manual_seed(int(s)) for s in distinct]  # CPU: same batches on any device
    slot = [distinct.index(s) for s in seeds]
    labels = labels.to(device)  # constant data: copied once, not per batch
    score = strategy.scorer(model, labels, losses, generators, slot, device)
    queries = labels.queries[:, 0].contiguous(), labels.queries[:, 1].contiguous()  # heads, relations
    model.train()
    bar = tqdm(range(start_epoch + 1, epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        mean_loss = _train_one_epoch(len(labels), queries, losses, score, optimizer, generators, slot, batch_size, device)
        bad = [k for k, v in enumerate(mean_loss) if not math.isfinite(v)]
        if bad:
            raise NonFiniteLoss(f"training loss became {mean_loss[bad[0]]} at epoch {epoch} (configuration {bad[0]})")
        if progress:
            bar.set_postfix(loss=f"{mean_loss[0]:.4g}" if stack == 1 else [f"{v:.3g}" for v in mean_loss])
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean_loss, optimizer, generators)
    return optimizer


def _strategy_of(num_negatives: int, sparse: bool) -> TrainingStrategy:
    """The strategy of the keyword arguments ``num_negatives`` and ``sparse`` (callers without a spec)."""
    if sparse and not num_negatives:
        raise ValueError("sparse gradients need negative sampling (num_negatives > 0): 1vsAll/KvsAll touch every entity")
    return NegativeSampling(num_negatives, sparse) if num_negatives else OneVsAll()


def _train_one_epoch(n, queries, losses, score, optimizer, generators, slot, batch_size, device) -> list[float]:
    """One epoch over ``n`` data points: a fresh batch order per generator, one optimizer step per
    batch; returns the mean losses."""
    stack, (heads, relations) = len(losses), queries
    orders = [batch_order(n, batch_size, g, device) for g in generators]
    epoch_loss = torch.zeros(stack, dtype=torch.float64, device=device)
    for step in range(len(orders[0])):
        per_slice = None
        if len(generators) == 1:
            idx = orders[0][step]
        else:
            per_slice = [orders[slot[k]][step] for k in range(stack)]
            idx = torch.stack(per_slice, dim=1)  # [B, K]
        scores, ks, rows, cols, weights = score(idx, per_slice, heads[idx], relations[idx])
        total = stacked_losses(losses, scores, ks, rows, cols, row_weights=weights)  # [K]
        optimizer.zero_grad(set_to_none=True)
        total.sum().backward()
        optimizer.step()
        epoch_loss.add_(total.detach(), alpha=len(idx))
    return (epoch_loss / n).tolist()  # one host sync per epoch
