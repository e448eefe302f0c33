"""What the paper's test MRR is made of: the 2022 test split, row group by row group.

The authors' test split (``protocol=paper_code``, :mod:`kdkge.data_2022`) has three kinds of rows.
With ``T`` the clean test triples and ``V₂`` the validation split *with* its reciprocals:

* ``true``     — rows ``0 … |T|−1``: the test triples ``(h, r, t)`` themselves;
* ``inverse``  — rows ``|T| … 2|T|−1``: ``(t_i, r_i⁻¹, subject(V₂[i]))``, the reciprocal of test
  triple *i* with its tail taken from validation row *i* (pandas aligned the two frames on the
  index), so the "answer" is a validation subject, right only by coincidence;
* ``nan``      — the remaining ``|V₂| − |T|`` rows ``(NaN, NaN, subject(V₂[i]))``.  No training
  triple has the NaN relation, so its vector keeps its random initial value (Adam never moves a row
  whose gradient was always zero); the NaN entity is trained only as a tail that is never right.
  The ranking of these rows is therefore decided by the initial NaN relation vector: a lottery
  drawn by the seed.  All of them share one query ``(NaN, NaN)``, so the filter removes every
  *other* NaN-row answer: each row competes only with the entities that are not answers of
  another NaN row (UMLS: 24 others, chance MRR .153; KINSHIP: 1 other, chance MRR .75).

For a row whose scores carry no information, the answer's position among the ``c`` unfiltered
candidates (itself included) is uniform, so ``E[1/rank] = H_c / c`` (``H_c`` the harmonic number) —
the *chance* MRR of that row.

``paper_test_mrr = Σ_g (n_g / N) · mrr_g``: the per-group metrics logged here (``paper_test_true_mrr``,
``paper_test_inverse_mrr``, ``paper_test_nan_mrr``, their Hits@1/10, and ``paper_test_nan_chance_mrr``)
say how much of a run's headline number comes from true test triples and how much from rows that
test nothing.  ``python -m kdkge.backfill_2022`` backfills them into finished ``paper_code`` runs from
their checkpoint artifact (as ``make calibration`` backfills calibration metrics); new runs log
them at the end of training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .evaluation import RankingTask, metrics_from_ranks, paper_ranking_task, scored_batches, sorted_position_ranks
from .schema import PAPER_TEST_GROUP_METRICS, flat_metrics
from .schema import PAPER_TEST_GROUPS as GROUPS  # noqa: F401  (the row groups, in order)


def row_groups(kg) -> dict[str, torch.Tensor]:
    """Boolean masks over the rows of ``kg.paper_test`` for the groups of the module docstring."""
    n_rows, n_test = len(kg.paper_test), len(kg.test)
    index = torch.arange(n_rows)
    nan_entity = kg.entities.index("<NaN>") if "<NaN>" in kg.entities else -1
    nan = kg.paper_test[:, 0] == nan_entity
    true = index < n_test
    inverse = (index >= n_test) & ~nan
    if bool((true & nan).any()) or int(inverse.sum()) != n_test:
        raise ValueError(f"{kg.name}: the 2022 test split does not have the layout true | inverse | NaN rows")
    return {"true": true, "inverse": inverse, "nan": nan}


def candidate_counts(task: RankingTask, num_entities: int) -> torch.Tensor:
    """Per row: the entities it is ranked against after filtering, the answer included."""
    filtered = task.filter_offsets[1:] - task.filter_offsets[:-1]
    return num_entities - filtered


def chance_mrr(candidates: torch.Tensor) -> float:
    """Mean over rows of ``H_c / c``: the MRR of scores that carry no information (ties excluded)."""
    harmonic = torch.tensor([sum(1.0 / k for k in range(1, int(c) + 1)) / int(c) for c in candidates.tolist()],
                            dtype=torch.float64)
    return float(harmonic.mean())


@torch.inference_mode()
def paper_test_ranks(model, task: RankingTask, batch_size: int = 1024) -> torch.Tensor:
    """The authors' rank of every row (:func:`kdkge.evaluation.sorted_position_ranks`), ``[K, rows]``."""
    return torch.cat([sorted_position_ranks(*batch) for batch in scored_batches(model, task, batch_size)], dim=-1)


@dataclass(frozen=True)
class PaperTest:
    """The 2022 test split as the authors ranked it, with its row groups (what ``paper_code`` runs evaluate)."""

    task: RankingTask
    groups: dict
    nan_chance: float

    @classmethod
    def of(cls, kg) -> "PaperTest":
        task, groups = paper_ranking_task(kg), row_groups(kg)
        return cls(task, groups, chance_mrr(candidate_counts(task, kg.num_entities)[groups["nan"]]))

    def evaluate(self, model, batch_size: int = 1024) -> list[dict[str, dict[str, float]]]:
        """Per stacked configuration: ``paper_test`` (every row, :func:`kdkge.evaluation.metrics_from_ranks`),
        ``paper_test_<group>`` per row group, and ``paper_test_nan_chance`` (``{"mrr": …}``)."""
        ranks = paper_test_ranks(model, self.task, batch_size)
        out = []
        for k in range(ranks.shape[0]):
            metrics = {"paper_test": metrics_from_ranks(ranks[k])}
            metrics.update({f"paper_test_{g}": metrics_from_ranks(ranks[k][mask]) for g, mask in self.groups.items()})
            metrics["paper_test_nan_chance"] = {"mrr": self.nan_chance}
            out.append(metrics)
        return out


def breakdown(model, kg) -> dict[str, float]:
    """The group metrics of one model on ``kg``'s 2022 test split, flat (``paper_test_true_mrr``, …)."""
    [per_split] = PaperTest.of(kg).evaluate(model)
    return {key: value for key, value in flat_metrics(per_split).items() if key in PAPER_TEST_GROUP_METRICS}
