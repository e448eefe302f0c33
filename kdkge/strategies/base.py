"""The interface every training strategy implements (:class:`TrainingStrategy`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..data import TrainingLabels
from ..registries import registrar

#: The registered strategies by name (``strategy=<name>``), filled by :func:`register`.
STRATEGY_CLASSES: dict[str, type] = {}


#: Class decorator: make a strategy available under ``cls.name`` (:func:`kdkge.registries.registrar`).
register = registrar(STRATEGY_CLASSES, "strategy")



class TrainingStrategy:
    """How a run turns training triples into data points and a batch into scores and true cells.

    A subclass sets ``name`` and implements :meth:`labels` and :meth:`scorer`; the rest has
    defaults.  The training loop (:func:`kdkge.training.train_epochs`) draws each epoch's batch
    order and calls the scorer once per step; the loss (:func:`kdkge.losses.stacked_losses`) then
    sees the scores ``[K, B, n]`` and the positive cells ``(ks, rows, cols)``.
    """

    name: str = ""
    #: Every data point has exactly one true tail (losses like softmax cross-entropy need it).
    one_tail_per_point: bool = True
    #: Embeddings get sparse gradients and lazy Adam (:class:`kdkge.training.SparseAdam`).
    sparse: bool = False

    @classmethod
    def from_spec(cls, spec) -> "TrainingStrategy":
        """The strategy with the options of a :class:`~kdkge.experiment.RunSpec` (none by default)."""
        return cls()

    # --- checks before anything is built ---------------------------------------------------
    @classmethod
    def check(cls, spec) -> None:
        """Raise ``ValueError`` (one line) for settings of ``spec`` this strategy cannot train."""
        if spec.sparse:
            raise ValueError("sparse gradients need negative sampling (strategy=negsamp): 1vsAll/KvsAll touch every entity")

    def check_graph(self, kg) -> None:
        """Raise ``ValueError`` for a graph this strategy cannot train on with these settings."""

    def training_bytes(self, stack: int, batch: int, entities: int, dim: int, stored_width: int, size: int) -> int:
        """Rough peak bytes of a training step's score tensors (:func:`kdkge.experiment.memory_estimate`).

        All-tails default: the ``[K, batch, |E|]`` scores with their loss terms and gradient (4 copies)
        and the ``[|E|, K, d]`` tail vectors a Kronecker model expands (and their gradients).
        """
        return 4 * stack * batch * entities * size + 2 * entities * stack * dim * size

    # --- training --------------------------------------------------------------------------
    def labels(self, triples: torch.Tensor) -> TrainingLabels:
        """The data points of the training triples (reciprocals included)."""
        raise NotImplementedError

    def scorer(self, model, labels: TrainingLabels, losses: list, generators: list[torch.Generator],
               slot: list[int], device: torch.device) -> Callable:
        """A function ``(idx, per_slice, h, r) -> (scores, ks, rows, cols, row_weights)`` for one step.

        ``idx`` is the batch ``[B]`` (one batch order) or ``[B, K]`` (stacked seeds, slice ``k``'s
        batch ``per_slice[k]``); ``h, r`` its heads and relations.  ``scores [K, B', n]`` and the
        positive cells go to the loss; ``row_weights [B']`` (or ``None``) says how many data points
        each score row stands for.  ``labels`` are on ``device`` already.
        """
        raise NotImplementedError
