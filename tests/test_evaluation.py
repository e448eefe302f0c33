"""Filtered ranks and metrics against a brute-force loop, with tied scores."""

import pytest
import torch

from kdkge.data import load_dataset
from kdkge.evaluation import evaluate, ranking_task
from kdkge.models.base import KGEModel


class TableModel(KGEModel):
    """Scores looked up from a fixed table ``[|E|, |R|, |E|]`` (rounded, so many ties)."""

    name = "table"

    def __init__(self, table):
        super().__init__(table.shape[0], table.shape[1], 1)
        self.table = torch.nn.Parameter(table)

    def score_all_tails_stacked(self, h, r):
        return self.table[h, r].unsqueeze(0)


def brute_force(table, kg, triples):
    known = {tuple(t) for split in (kg.train, kg.valid, kg.test) for t in split.tolist()}
    n = len(kg.relations)
    known |= {(t, r + n, h) for h, r, t in known}
    ranks = {"optimistic": [], "pessimistic": [], "realistic": []}
    for h, r, t in triples.tolist():
        for qh, qr, qt in ((h, r, t), (t, r + n, h)):
            target = table[qh, qr, qt].item()
            better = ties = 0
            for x in range(table.shape[0]):
                if x == qt or (qh, qr, x) in known:
                    continue  # the answer itself and other known true tails are filtered out
                s = table[qh, qr, x].item()
                better += s > target
                ties += s == target
            ranks["optimistic"].append(1 + better)
            ranks["pessimistic"].append(1 + better + ties)
            ranks["realistic"].append(1 + better + ties / 2)
    return ranks


def metrics(ranks):
    return {
        "mrr": sum(1 / x for x in ranks) / len(ranks),
        **{f"hits@{k}": sum(x <= k for x in ranks) / len(ranks) for k in (1, 3, 10)},
    }


@pytest.mark.parametrize("split", ["valid", "test"])
def test_filtered_realistic_ranks_match_brute_force_with_ties(split):
    kg = load_dataset("nations")
    gen = torch.Generator().manual_seed(0)
    table = torch.randint(0, 4, (kg.num_entities, kg.num_relations, kg.num_entities), generator=gen).double()
    model = TableModel(table)
    triples = getattr(kg, split)
    ours = evaluate(model, ranking_task(kg, triples), batch_size=37)  # odd batch size: batching must not matter
    expected = brute_force(table, kg, triples)
    for kind, prefix in (("realistic", ""), ("optimistic", "optimistic_"), ("pessimistic", "pessimistic_")):
        for key, value in metrics(expected[kind]).items():
            assert ours[prefix + key] == pytest.approx(value, rel=1e-12), (kind, key)
    assert ours["optimistic_mrr"] > ours["mrr"] > ours["pessimistic_mrr"]  # ties do exist


def test_all_tied_scores_give_the_middle_rank():
    kg = load_dataset("nations")
    model = TableModel(torch.zeros(kg.num_entities, kg.num_relations, kg.num_entities))
    task = ranking_task(kg, kg.test)
    result = evaluate(model, task)
    # every unfiltered candidate ties with the answer: realistic rank = 1 + (#candidates − 1) / 2
    expected = brute_force(model.table.detach(), kg, kg.test)["realistic"]
    assert result["mrr"] == pytest.approx(metrics(expected)["mrr"])
    assert result["optimistic_mrr"] == 1.0


def test_queries_cover_both_directions_and_filter_excludes_answer():
    kg = load_dataset("umls")
    task = ranking_task(kg, kg.test)
    assert len(task) == 2 * len(kg.test)
    for i in range(0, len(task), 97):
        others = task.filter_cols[task.filter_offsets[i] : task.filter_offsets[i + 1]]
        assert task.answers[i] not in others.tolist()


def test_nan_scores_are_an_error():
    kg = load_dataset("nations")
    table = torch.zeros(kg.num_entities, kg.num_relations, kg.num_entities)
    table[0] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN scores"):
        evaluate(TableModel(table), ranking_task(kg, kg.test))


def test_evaluation_runs_in_eval_mode_and_restores_mode():
    from kdkge.models import build_model

    kg = load_dataset("nations")
    model = build_model("distmult", kg.num_entities, kg.num_relations, 4)
    model.reset_parameters([1])
    model.train()
    task = ranking_task(kg, kg.test)
    first = evaluate(model, task)
    assert model.training  # restored
    assert evaluate(model, task) == first  # eval mode: batch statistics do not change anything
