"""Filtered link-prediction metrics (Sec. 5.3): MRR and Hits@1/3/10.

Queries are ``(h, r, ?)`` for every triple of a split *and* its reciprocal ``(t, r⁻¹, ?)``, so
both directions are ranked as tail prediction (the 1vsAll protocol with reciprocal relations).
Filtered: every other known true tail of the query (train + valid + test) is removed before ranking.

Ties (equal scores) are resolved three ways, as in PyKEEN's ``evaluation/ranks.py``:

* optimistic rank  = 1 + #{x : s_x > s_t},
* pessimistic rank = 1 + #{x ≠ t : s_x ≥ s_t},
* realistic rank   = (optimistic + pessimistic) / 2 — the expected rank under random tie
  breaking; the reported metrics use it.  (``torch.sort`` positions would break ties arbitrarily.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .data import KnowledgeGraph, known_tails, with_reciprocals

HITS_AT = (1, 3, 10)


@dataclass(frozen=True)
class RankingTask:
    """Queries of one split with their filter, precomputed once (sparse, CSR layout).

    For query ``i``: ``heads[i], relations[i]`` → ``answers[i]``; the other known true tails to
    remove are ``filter_cols[filter_offsets[i]:filter_offsets[i + 1]]``.
    """

    heads: torch.Tensor
    relations: torch.Tensor
    answers: torch.Tensor
    filter_offsets: torch.Tensor
    filter_cols: torch.Tensor

    def __len__(self) -> int:
        return len(self.answers)

    def to(self, device) -> "RankingTask":
        return RankingTask(*(t.to(device) for t in (self.heads, self.relations, self.answers, self.filter_offsets, self.filter_cols)))


def ranking_task(kg: KnowledgeGraph, triples: torch.Tensor, known: dict | None = None) -> RankingTask:
    """Build the queries (both directions) and the filter of ``triples``."""
    known = known_tails(kg) if known is None else known
    queries = with_reciprocals(triples, len(kg.relations))
    offsets, cols = [0], []
    for h, r, t in queries.tolist():
        others = sorted(known.get((h, r), set()) - {t})
        cols.extend(others)
        offsets.append(len(cols))
    return RankingTask(
        heads=queries[:, 0].contiguous(),
        relations=queries[:, 1].contiguous(),
        answers=queries[:, 2].contiguous(),
        filter_offsets=torch.tensor(offsets, dtype=torch.long),
        filter_cols=torch.tensor(cols, dtype=torch.long),
    )


def filtered_ranks(scores: torch.Tensor, answers: torch.Tensor, filter_rows: torch.Tensor, filter_cols: torch.Tensor):
    """Optimistic and pessimistic filtered ranks of ``answers`` in ``scores [..., B, |E|]``.

    ``(filter_rows, filter_cols)`` are the cells of other true tails, excluded from the count.
    """
    if torch.isnan(scores).any():
        raise FloatingPointError("model produced NaN scores; ranks would be meaningless")
    target = scores.gather(-1, answers.expand(*scores.shape[:-1]).unsqueeze(-1))
    removed = torch.zeros(scores.shape[-2:], dtype=torch.bool, device=scores.device)
    removed[filter_rows, filter_cols] = True
    removed[torch.arange(len(answers), device=scores.device), answers] = True  # the answer itself
    kept = ~removed  # [B, |E|], shared by all stacked slices
    greater = ((scores > target) & kept).sum(-1)
    equal = ((scores == target) & kept).sum(-1)
    optimistic = 1 + greater
    pessimistic = optimistic + equal
    return optimistic, pessimistic


def metrics_from_ranks(ranks: torch.Tensor, prefix: str = "") -> dict[str, float]:
    ranks = ranks.double()
    out = {f"{prefix}mrr": (1.0 / ranks).mean().item()}
    for k in HITS_AT:
        out[f"{prefix}hits@{k}"] = (ranks <= k).double().mean().item()
    return out


def scored_batches(model, task: RankingTask, batch_size: int):
    """Per batch of queries, in ``eval()`` mode: ``(scores [K, B, |E|], answers, filter rows, filter cols)``."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        task = task.to(device)
        for start in range(0, len(task), batch_size):
            end = min(start + batch_size, len(task))
            scores = model.score_all_tails_stacked(task.heads[start:end], task.relations[start:end])
            lo, hi = task.filter_offsets[start], task.filter_offsets[end]
            counts = task.filter_offsets[start + 1 : end + 1] - task.filter_offsets[start:end]
            rows = torch.repeat_interleave(torch.arange(end - start, device=device), counts)
            yield scores, task.answers[start:end], rows, task.filter_cols[lo:hi]
    finally:
        model.train(was_training)


@torch.inference_mode()  # no autograd bookkeeping at all (cheaper than no_grad)
def evaluate_stacked(model, task: RankingTask, batch_size: int = 4096) -> list[dict[str, float]]:
    """Filtered metrics of every stacked configuration, in ``eval()`` mode.

    Returns per configuration ``mrr, hits@1, hits@3, hits@10`` (realistic ranks) plus the same
    under ``optimistic_`` and ``pessimistic_`` prefixes.
    """
    optimistic, pessimistic = [], []
    for scores, answers, rows, cols in scored_batches(model, task, batch_size):
        opt, pes = filtered_ranks(scores, answers, rows, cols)
        optimistic.append(opt)
        pessimistic.append(pes)
    optimistic = torch.cat(optimistic, dim=-1)
    pessimistic = torch.cat(pessimistic, dim=-1)
    results = []
    for k in range(optimistic.shape[0]):
        realistic = (optimistic[k] + pessimistic[k]).double() / 2
        metrics = metrics_from_ranks(realistic)
        metrics.update(metrics_from_ranks(optimistic[k], "optimistic_"))
        metrics.update(metrics_from_ranks(pessimistic[k], "pessimistic_"))
        results.append(metrics)
    return results


def evaluate(model, task: RankingTask, batch_size: int = 4096) -> dict[str, float]:
    """Filtered metrics of an unstacked model (see :func:`evaluate_stacked`)."""
    return evaluate_stacked(model, task, batch_size)[0]


# --------------------------------------------------------------------------- #
# protocol=paper_code: the authors' evaluation of their 2022 test split
# --------------------------------------------------------------------------- #


def paper_ranking_task(kg: KnowledgeGraph) -> RankingTask:
    """The 2022 test split as the authors ranked it (``core/executer.py:374-456`` at ``ca983cc``).

    Every row of ``kg.paper_test`` is one tail query as it stands — true triples, the inverse rows
    whose tail is a validation subject, and the ``(NaN, NaN, ·)`` rows; no reciprocals are added.
    The filter is every known tail of ``(h, r)`` in train (with reciprocals and noise), valid (with
    reciprocals) and the whole 2022 test split (:func:`kdkge.data_2022.paper_filter_triples`).
    """
    from .data_2022 import paper_filter_triples

    if kg.paper_test is None:
        raise ValueError("this knowledge graph has no 2022 test split (load it with protocol=paper_code)")
    known: dict[tuple[int, int], set[int]] = {}
    for h, r, t in paper_filter_triples(kg).tolist():
        known.setdefault((h, r), set()).add(t)
    queries = kg.paper_test
    offsets, cols = [0], []
    for h, r, t in queries.tolist():
        cols.extend(sorted(known[(h, r)] - {t}))
        offsets.append(len(cols))
    return RankingTask(
        heads=queries[:, 0].contiguous(), relations=queries[:, 1].contiguous(), answers=queries[:, 2].contiguous(),
        filter_offsets=torch.tensor(offsets, dtype=torch.long), filter_cols=torch.tensor(cols, dtype=torch.long),
    )


def sorted_position_ranks(scores: torch.Tensor, answers: torch.Tensor, filter_rows: torch.Tensor, filter_cols: torch.Tensor) -> torch.Tensor:
    """The authors' rank: filtered tails set to −inf (the answer keeps its score), then
    1 + the answer's position in ``torch.sort(scores, descending=True)``; ties fall where
    ``torch.sort`` puts them.  ``scores [K, B, |E|]`` → ranks ``[K, B]``."""
    scores = scores.clone()
    scores[:, filter_rows, filter_cols] = -math.inf
    _, order = torch.sort(scores, dim=-1, descending=True)
    return (order == answers.view(1, -1, 1)).int().argmax(-1) + 1


@torch.inference_mode()
def evaluate_sorted_stacked(model, task: RankingTask, batch_size: int = 1024) -> list[dict[str, float]]:
    """``mrr, hits@1, hits@3, hits@10`` per stacked configuration from :func:`sorted_position_ranks`
    (MRR = mean 1/rank, Hits@k = #(rank ≤ k)/N over all rows), in ``eval()`` mode."""
    ranks = torch.cat([sorted_position_ranks(*batch) for batch in scored_batches(model, task, batch_size)], dim=-1)
    return [metrics_from_ranks(ranks[k]) for k in range(ranks.shape[0])]
