"""Model selection on validation MRR (never test), and early stopping, as per-epoch hooks.

:class:`BestValidation` keeps, per stacked configuration, the best validation MRR seen at an
evaluation, its epoch and that model's weights; with ``patience = P > 0`` it says when every
configuration has gone ``P`` evaluations without a better validation MRR.  Its records are part of
the training state (:class:`kdkge.checkpoints.TrainingState`), so a resumed run selects as an
uninterrupted one.
"""

from __future__ import annotations

import torch


class EarlyStop(Exception):
    """Raised by a per-epoch hook to end training after this epoch (patience ran out)."""


class BestValidation:
    """Best-validation tracking for ``stack`` configurations (``patience`` evaluations; 0 = never stop)."""

    def __init__(self, stack: int, patience: int = 0):
        if patience and stack > 1:
            raise ValueError("early stopping (patience > 0) trains one configuration at a time: do not stack it")
        self.patience = patience
        #: per configuration: best ``mrr``, its ``epoch``, the unstacked model's ``state``, evaluations ``waited``
        self.records: list[dict] = [{"mrr": -1.0, "epoch": None, "state": None, "waited": 0} for _ in range(stack)]

    def update(self, model, epoch: int, metrics: list[dict[str, dict[str, float]]]) -> bool:
        """Record the evaluation ``metrics`` of ``model`` after ``epoch``; True when patience has run out."""
        for k, tracked in enumerate(self.records):
            mrr = metrics[k]["valid"]["mrr"]
            if mrr > tracked["mrr"]:
                tracked.update(mrr=mrr, epoch=epoch, waited=0)
                tracked["state"] = {key: v.detach().clone() for key, v in model.unstack(k).state_dict().items()}
            else:
                tracked["waited"] += 1
        return bool(self.patience) and all(t["waited"] >= self.patience for t in self.records)

    def best_model(self, k: int, like: torch.nn.Module) -> torch.nn.Module:
        """Configuration ``k``'s best-validation model, in eval mode: ``like`` (an unstacked model of the
        run, not changed) rebuilt with the kept weights."""
        chosen = type(like).build(like.num_entities, like.num_relations, like.dim, **like.options)
        chosen.to(next(like.parameters()))
        chosen.load_state_dict(self.records[k]["state"])
        return chosen.eval()
