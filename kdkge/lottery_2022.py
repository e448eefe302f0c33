"""The NaN rows' lottery, redrawn: what the seed alone can do to a run's 2022 test MRR.

No training triple has the NaN relation (:mod:`kdkge.split_2022`), so its vector ``r_NaN`` keeps
the value it was initialised with: one draw ``r_NaN ~ N(0, σ² I)`` with ``σ = √(2 / (|R| + w))``,
the Xavier-normal initialisation of the ``[|R|, w]`` relation table
(:meth:`kdkge.models.base.StackedEmbedding.reset_parameters`).  Nothing else in training depends on
that draw: the NaN relation is in no batch, so it reaches no loss, no gradient and no batch-norm
statistic.  A trained run's NaN-row MRR is therefore a function ``m(r_NaN)`` of that single draw,
with everything else the trained model.

:func:`nan_lottery` redraws ``r_NaN`` ``draws`` times from the same distribution, everything else
fixed, and ranks the NaN rows each time exactly as the authors' evaluation does
(:func:`kdkge.evaluation.sorted_position_ranks`, the same filter).  The result is the distribution
of the NaN-row MRR that this trained model could have drawn; the run's own value is one sample of
it.  Every NaN row has the same query ``(NaN, NaN)``, so one score vector per draw serves all rows.

Logged into finished ``paper_code`` runs by ``python -m kdkge.backfill_2022`` (from their
checkpoint) as ``paper_test_nan_lottery_mrr_{mean,q01,q05,q10,q25,q50,q75,q90,q95,q99,max}`` and
``paper_test_nan_lottery_draws``; ``REPRODUCTION.md`` ("What the 2022 test MRR is made of") says
where the NaN-row MRR that the paper's number needs lies in that distribution.
"""

from __future__ import annotations

import torch

from .evaluation import RankingTask, sorted_position_ranks
from .schema import (PAPER_TEST_LOTTERY_DRAWS, PAPER_TEST_LOTTERY_MAX, PAPER_TEST_LOTTERY_MEAN, PAPER_TEST_LOTTERY_QUANTILES,
                     lottery_quantile_metric)
from .models.base import xavier_std
from .split_2022 import PaperTest

#: draws of the NaN relation's vector per run, and the seed of their generator (fixed: every run
#: of one shape sees the same draws, and a backfill gives the same metrics every time)
DRAWS = 2000
SEED = 2022


def nan_query(paper_test: PaperTest) -> tuple[int, int, RankingTask, torch.Tensor]:
    """``(head, relation, task, weights)``: the one query ``(NaN, NaN)`` of the NaN rows, and those rows
    as a task with one row per distinct answer, weighted by how many NaN rows have that answer.

    Rows with the same answer have the same filter (every other known tail of ``(NaN, NaN)``) and the
    same scores, so the same rank: UMLS's 643 NaN rows are 112 distinct rows, KINSHIP's 1,062 are 104.
    """
    rows = torch.nonzero(paper_test.groups["nan"]).flatten()
    task = paper_test.task
    heads, relations = task.heads[rows].unique(), task.relations[rows].unique()
    if len(heads) != 1 or len(relations) != 1:
        raise ValueError("the NaN rows of the 2022 test split do not share one query (NaN, NaN)")
    first: dict[int, int] = {}
    counts: dict[int, int] = {}
    for i in rows.tolist():
        answer = int(task.answers[i])
        first.setdefault(answer, i)
        counts[answer] = counts.get(answer, 0) + 1
    offsets, cols = [0], []
    for i in first.values():
        cols.append(task.filter_cols[task.filter_offsets[i]: task.filter_offsets[i + 1]])
        offsets.append(offsets[-1] + len(cols[-1]))
    keep = torch.tensor(list(first.values()), dtype=torch.long)
    sub = RankingTask(heads=task.heads[keep], relations=task.relations[keep], answers=task.answers[keep],
                      filter_offsets=torch.tensor(offsets, dtype=torch.long),
                      filter_cols=torch.cat(cols) if cols else torch.empty(0, dtype=torch.long))
    return int(heads[0]), int(relations[0]), sub, torch.tensor(list(counts.values()), dtype=torch.float64)


def relation_draws(model, draws: int = DRAWS, seed: int = SEED) -> torch.Tensor:
    """``[draws, w]`` vectors from the relation table's initial distribution, ``N(0, 2 / (|R| + w))``."""
    table = model.relations
    std = xavier_std(table.num, table.width)  # as StackedEmbedding.reset_parameters
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(draws, table.width, generator=gen, dtype=torch.float64) * std


@torch.inference_mode()
def nan_row_mrr(model, paper_test: PaperTest, vectors: torch.Tensor) -> torch.Tensor:
    """NaN-row MRR of every stacked configuration with ``r_NaN`` set to each of ``vectors``: ``[draws, K]``.

    The model's own ``r_NaN`` is restored afterwards; the model is scored in ``eval()`` mode.
    """
    head, relation, task, weights = nan_query(paper_test)
    weight = model.relations.weight  # [|R|, K, w]
    saved = weight[relation].clone()
    was_training = model.training
    model.eval()
    rows = torch.repeat_interleave(torch.arange(len(task)), task.filter_offsets[1:] - task.filter_offsets[:-1])
    out = torch.empty(len(vectors), weight.shape[1], dtype=torch.float64)
    try:
        h, r = torch.tensor([head]), torch.tensor([relation])
        for i, vector in enumerate(vectors):
            weight[relation] = vector.to(weight.dtype)  # the same draw for every stacked configuration
            scores = model.score_all_tails_stacked(h, r)  # [K, 1, |E|]: the one (NaN, NaN) query
            ranks = sorted_position_ranks(scores.expand(-1, len(task), -1), task.answers, rows, task.filter_cols)
            out[i] = (weights / ranks.double()).sum(-1) / weights.sum()
    finally:
        weight[relation] = saved
        model.train(was_training)
    return out


def nan_lottery(model, kg, draws: int = DRAWS, seed: int = SEED) -> list[dict[str, float]]:
    """Per stacked configuration: the lottery's mean, quantiles and maximum of the NaN-row MRR (flat names)."""
    paper_test = PaperTest.of(kg)
    mrr = nan_row_mrr(model, paper_test, relation_draws(model, draws, seed))
    q = torch.tensor([p / 100 for p in PAPER_TEST_LOTTERY_QUANTILES], dtype=torch.float64)
    out = []
    for k in range(mrr.shape[1]):
        column = mrr[:, k]
        metrics = {PAPER_TEST_LOTTERY_MEAN: float(column.mean()), PAPER_TEST_LOTTERY_MAX: float(column.max()),
                   PAPER_TEST_LOTTERY_DRAWS: float(len(column))}
        for p, value in zip(PAPER_TEST_LOTTERY_QUANTILES, torch.quantile(column, q).tolist()):
            metrics[lottery_quantile_metric(p)] = value
        out.append(metrics)
    return out
