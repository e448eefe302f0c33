"""The row groups of the authors' 2022 test split (kdkge.split_2022) against slow formulas."""

import math

import pytest
import torch

from kdkge.data_2022 import NAN_NAME, load_dataset_2022
from kdkge.evaluation import evaluate_sorted_stacked, paper_ranking_task
from kdkge.experiment import RunSpec, run
from kdkge.models import build_model
from kdkge.split_2022 import GROUPS, breakdown, candidate_counts, chance_mrr, row_groups


@pytest.mark.parametrize("name, sizes", [("umls", (661, 661, 643)), ("kinship", (1074, 1074, 1062))])
def test_row_groups_are_the_true_inverse_and_nan_rows(name, sizes):
    kg = load_dataset_2022(name)
    groups = row_groups(kg)
    assert tuple(int(groups[g].sum()) for g in GROUPS) == sizes
    assert bool((groups["true"] | groups["inverse"] | groups["nan"]).all())
    assert int(sum(groups[g].int() for g in GROUPS).max()) == 1  # a partition
    # slow check, row by row: true rows are the test triples; inverse rows start from a test tail with
    # the reciprocal relation; NaN rows have the NaN entity and the NaN relation (id 2|R|)
    nan_entity, n_rel = kg.entities.index(NAN_NAME), len(kg.relations)
    test = kg.test.tolist()
    for i, (h, r, t) in enumerate(kg.paper_test.tolist()):
        if groups["true"][i]:
            assert [h, r, t] == test[i]
        elif groups["inverse"][i]:
            th, tr, tt = test[i - len(test)]
            assert (h, r) == (tt, tr + n_rel)
        else:
            assert (h, r) == (nan_entity, 2 * n_rel)


def test_group_metrics_add_up_to_the_logged_paper_test_metrics():
    kg = load_dataset_2022("umls")
    torch.manual_seed(0)
    model = build_model("kd_distmult", kg.num_entities, kg.num_relations, 16).double().eval()
    model.reset_parameters([0])  # build_model leaves the weights uninitialised
    metrics = breakdown(model, kg)
    [whole] = evaluate_sorted_stacked(model, paper_ranking_task(kg))
    sizes = {g: int(mask.sum()) for g, mask in row_groups(kg).items()}
    total = sum(sizes.values())
    for group_key, whole_key in (("mrr", "mrr"), ("hits_1", "hits@1"), ("hits_10", "hits@10")):
        recomposed = sum(sizes[g] * metrics[f"paper_test_{g}_{group_key}"] for g in GROUPS) / total
        assert recomposed == pytest.approx(whole[whole_key], rel=1e-12, abs=1e-12)


def test_chance_mrr_is_the_mean_reciprocal_rank_of_uninformative_scores():
    counts = torch.tensor([1, 2, 5, 40])
    slow = sum(sum(1.0 / k for k in range(1, c + 1)) / c for c in counts.tolist()) / len(counts)
    assert chance_mrr(counts) == pytest.approx(slow, rel=1e-12)
    # and by simulation: the answer's position among c random scores, averaged over many draws
    gen = torch.Generator().manual_seed(0)
    draws = 20000
    simulated = []
    for c in counts.tolist():
        scores = torch.rand(draws, c, generator=gen, dtype=torch.float64)
        rank = 1 + (scores[:, 1:] > scores[:, :1]).sum(1)
        simulated.append((1.0 / rank.double()).mean())
    assert float(torch.stack(simulated).mean()) == pytest.approx(slow, abs=4 / math.sqrt(draws))


def test_candidate_counts_leave_out_the_filtered_tails():
    kg = load_dataset_2022("umls")
    task = paper_ranking_task(kg)
    counts = candidate_counts(task, kg.num_entities)
    for i in (0, 700, 1900):
        filtered = int(task.filter_offsets[i + 1] - task.filter_offsets[i])
        assert int(counts[i]) == kg.num_entities - filtered


def test_the_nan_relation_keeps_its_initial_vector_during_training():
    """The premise of the NaN rows' lottery: no training triple has the NaN relation, so its vector
    never gets a gradient and Adam never moves it (the NaN *entity* does move: every entity is a
    candidate tail of 1vsAll, so softmax CE pushes its score down)."""
    base = dict(dataset="umls", model="distmult", dim=16, batch_size=512, dtype="float64", protocol="paper_code")
    [before] = run([RunSpec(**base, epochs=0)], progress=False)
    [after] = run([RunSpec(**base, epochs=2)], progress=False)
    kg = after.kg
    nan_relation = 2 * len(kg.relations)
    r0, r1 = before.model.relations.weight, after.model.relations.weight
    assert r0.shape[0] == kg.num_relations == nan_relation + 1
    assert torch.equal(r0[nan_relation], r1[nan_relation])
    assert not torch.equal(r0[:nan_relation], r1[:nan_relation])  # the other relations did train
    nan_entity = kg.entities.index(NAN_NAME)
    assert not torch.equal(before.model.entities.weight[nan_entity], after.model.entities.weight[nan_entity])


def test_a_paper_code_run_reports_the_row_groups_beside_paper_test():
    [result] = run([RunSpec(dataset="umls", model="kd_distmult", dim=16, epochs=1, batch_size=1024, dtype="float64")],
                   progress=False)
    metrics = result.metrics
    assert set(GROUPS) <= {split.removeprefix("paper_test_") for split in metrics if split.startswith("paper_test_")}
    sizes = {g: int(mask.sum()) for g, mask in row_groups(result.kg).items()}
    recomposed = sum(sizes[g] * metrics[f"paper_test_{g}"]["mrr"] for g in GROUPS) / sum(sizes.values())
    assert recomposed == pytest.approx(metrics["paper_test"]["mrr"], rel=1e-12)
    assert metrics["paper_test_nan_chance"]["mrr"] == pytest.approx(0.153, abs=5e-4)
