"""The training loop (Sec. 5.1): Adam on the summed per-configuration losses, mini-batches of data points.

One loop trains ``K`` stacked configurations at once (``K = 1`` is an ordinary run).  Slice ``k``
shuffles with its own generator seeded ``seeds[k]``; slices that share a seed share the batch
order, so they index the same rows and the batches stay one tensor ``[B]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .data import TrainingLabels


def resolve_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (error without a GPU), ``cuda:N`` or ``auto`` (GPU if there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={name} but no CUDA GPU is available here: use device=cpu or device=auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device={name!r} is not one of cpu, cuda, cuda:N, auto")
    return torch.device(name)


def batch_order(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A fresh random permutation of ``n`` data points split into batches of ``batch_size``.

    A final batch of one element is merged into the previous one: batch norm cannot normalise
    a single example in training mode.
    """
    perm = torch.randperm(n, generator=generator)
    batches = list(torch.split(perm, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        last = batches.pop()
        batches[-1] = torch.cat([batches[-1], last])
    return batches


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
) -> torch.optim.Optimizer:
    """Train for epochs ``start_epoch + 1 … epochs``.

    ``losses[k]`` is configuration ``k``'s loss.  ``on_epoch_end(epoch, mean_losses, optimizer,
    generators)`` runs after every epoch (metrics, checkpoints); ``generators`` are the batch-order
    generators, whose state a checkpoint must keep for an exact resume.
    """
    stack = len(losses)
    if len(seeds) != stack:
        raise ValueError(f"need one seed per configuration: {len(seeds)} seeds for {stack} losses")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    distinct = sorted(set(seeds))
    if generators is None:
        generators = [torch.Generator().manual_seed(int(s)) for s in distinct]
    slot = [distinct.index(s) for s in seeds]
    labels = labels.to(device)  # constant data: copied once, not per batch
    model.train()
    bar = tqdm(range(start_epoch + 1, epochs + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        orders = [[b.to(device) for b in batch_order(len(labels), batch_size, g)] for g in generators]
        epoch_loss = torch.zeros(stack, dtype=torch.float64, device=device)
        for step in range(len(orders[0])):
            idx = [orders[slot[k]][step] for k in range(stack)]
            targets = [labels.batch_targets(orders[j][step]) for j in range(len(generators))]
            if len(generators) == 1:
                h, r = labels.queries[idx[0]].unbind(1)
            else:
                stacked_idx = torch.stack(idx, dim=1)  # [B, K]
                h, r = labels.queries[stacked_idx, 0], labels.queries[stacked_idx, 1]
            scores = model.score_all_tails_stacked(h, r)  # [K, B, |E|]
            batch_losses = []
            for k, loss_fn in enumerate(losses):
                rows, cols = targets[slot[k]]
                batch_losses.append(loss_fn(scores[k], rows, cols))
            total = torch.stack(batch_losses)
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()
            optimizer.step()
            epoch_loss += total.detach().double() * len(idx[0])
        mean_loss = (epoch_loss / len(labels)).tolist()  # one host sync per epoch
        bad = [k for k, v in enumerate(mean_loss) if not math.isfinite(v)]
        if bad:
            raise NonFiniteLoss(f"training loss became {mean_loss[bad[0]]} at epoch {epoch} (configuration {bad[0]})")
        if progress:
            bar.set_postfix(loss=f"{mean_loss[0]:.4g}" if stack == 1 else [f"{v:.3g}" for v in mean_loss])
        if on_epoch_end is not None:
            on_epoch_end(epoch, mean_loss, optimizer, generators)
    return optimizer
