"""How well calibrated are the predicted probabilities σ(score)?  (Sec. 3.3 argues, this measures.)

Every distinct query ``(h, r)`` of a split (both directions) against every entity x is one
binary prediction ``p = σ(φ(h, r, x))`` with label ``y = 1`` iff ``(h, r, x)`` is a known fact
(train, valid or test).  Over all these pairs:

* **ECE** (expected calibration error, Naeini et al. 2015; equal-width bins):
  ``Σ_b |B_b|/N · |mean y − mean p|`` over bins ``B_b`` of p;
* **Brier score**: ``mean (p − y)²``;
* **top-1 ECE** (Guo et al. 2017): per query, the confidence ``p`` of the highest-scoring entity
  against whether that entity is a known fact, binned the same way.
"""

from __future__ import annotations

import torch

from .evaluation import RankingTask


def binned(p: torch.Tensor, y: torch.Tensor, bins: int):
    """Per equal-width bin of ``p`` in [0, 1]: count, Σ p, Σ y."""
    index = (p * bins).long().clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    sum_p = torch.bincount(index, weights=p.double(), minlength=bins)
    sum_y = torch.bincount(index, weights=y.double(), minlength=bins)
    return count, sum_p, sum_y


def expected_calibration_error(p: torch.Tensor, y: torch.Tensor, bins: int = 15) -> float:
    """``Σ_b |B_b|/N · |acc_b − conf_b| = Σ_b |Σ_{B_b} y − Σ_{B_b} p| / N``."""
    if bins < 1:
        raise ValueError(f"bins={bins} must be a positive integer")
    count, sum_p, sum_y = binned(p.flatten(), y.flatten(), bins)
    return float((sum_y - sum_p).abs().sum() / count.sum())


def brier_score(p: torch.Tensor, y: torch.Tensor) -> float:
    return float(((p.double() - y.double()) ** 2).mean())


def query_labels(task: RankingTask, num_entities: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct ``(h, r)`` queries of a task and their 0/1 label rows ``[U, |E|]``."""
    key = task.heads * (int(task.relations.max()) + 1) + task.relations
    unique, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((len(unique),), len(key), dtype=torch.long).scatter_reduce(
        0, inverse, torch.arange(len(key)), reduce="amin"
    )
    labels = torch.zeros(len(unique), num_entities, dtype=torch.bool)
    labels[inverse, task.answers] = True
    counts = task.filter_offsets[1:] - task.filter_offsets[:-1]
    labels[inverse.repeat_interleave(counts), task.filter_cols] = True
    return task.heads[first], task.relations[first], labels


@torch.inference_mode()
def calibration_metrics(model, task: RankingTask, bins: int = 15, batch_size: int = 4096) -> list[dict]:
    """``ece``, ``brier``, ``top1_ece`` per stacked configuration (eval mode), plus the bin
    statistics ``reliability`` (count, mean confidence, accuracy per bin) for a diagram."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        heads, relations, labels = query_labels(task, model.num_entities)
        probs = []
        for start in range(0, len(heads), batch_size):
            end = start + batch_size
            probs.append(torch.sigmoid(model.score_all_tails_stacked(heads[start:end].to(device), relations[start:end].to(device))).cpu())
        probs = torch.cat(probs, dim=1)  # [K, U, |E|]
    finally:
        model.train(was_training)
    results = []
    for p in probs:
        top = p.argmax(dim=1)
        confidence = p.gather(1, top.unsqueeze(1)).squeeze(1)
        correct = labels.gather(1, top.unsqueeze(1)).squeeze(1)
        count, sum_p, sum_y = binned(p.flatten(), labels.flatten(), bins)
        safe = count.clamp(min=1)
        results.append(
            {
                "ece": expected_calibration_error(p, labels, bins),
                "brier": brier_score(p, labels),
                "top1_ece": expected_calibration_error(confidence, correct, bins),
                "reliability": {"count": count.tolist(), "confidence": (sum_p / safe).tolist(), "accuracy": (sum_y / safe).tolist()},
            }
        )
    return results


def reliability_diagram(reliability: dict, title: str = ""):
    """A matplotlib figure: accuracy against confidence per bin, with the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = len(reliability["count"])
    centres = [(b + 0.5) / bins for b in range(bins)]
    used = [c > 0 for c in reliability["count"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.bar([c for c, u in zip(centres, used) if u], [a for a, u in zip(reliability["accuracy"], used) if u],
           width=1 / bins, edgecolor="black", alpha=0.7, label="fraction of true triples")
    ax.plot([c for c, u in zip(reliability["confidence"], used) if u], [a for a, u in zip(reliability["accuracy"], used) if u], "o-", color="C1", label="bin mean")
    ax.set_xlabel("predicted probability σ(score)")
    ax.set_ylabel("fraction true")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
