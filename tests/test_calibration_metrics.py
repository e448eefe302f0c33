"""Calibration metrics against hand-computed values and a direct loop."""

import pytest
import torch

from kdkge.calibration_metrics import (
    brier_score,
    calibration_metrics,
    expected_calibration_error,
    query_labels,
    reliability_diagram,
)
from kdkge.data import known_tails, load_dataset
from kdkge.evaluation import ranking_task
from tests.test_evaluation import TableModel


def test_ece_and_brier_hand_computed():
    p = torch.tensor([0.1, 0.4, 0.6, 0.9])
    y = torch.tensor([0, 0, 1, 1])
    # bins [0, .5), [.5, 1]: |0 − (.1 + .4)| + |2 − (.6 + .9)| = 1, over N = 4
    assert expected_calibration_error(p, y, bins=2) == pytest.approx(0.25)
    assert brier_score(p, y) == pytest.approx((0.01 + 0.16 + 0.16 + 0.01) / 4)
    # one bin: |Σy − Σp| / N = |2 − 2| / 4
    assert expected_calibration_error(p, y, bins=1) == pytest.approx(0.0, abs=1e-7)
    assert expected_calibration_error(torch.tensor([1.0, 0.0]), torch.tensor([1, 0]), bins=10) == 0.0


def test_labels_are_the_known_facts_of_distinct_queries():
    kg = load_dataset("nations")
    task = ranking_task(kg, kg.test)
    heads, relations, labels = query_labels(task, kg.num_entities)
    known = known_tails(kg)
    assert len(set(zip(heads.tolist(), relations.tolist()))) == len(heads)
    for i in range(len(heads)):
        truth = known[(int(heads[i]), int(relations[i]))]
        assert set(labels[i].nonzero().flatten().tolist()) == truth


def test_calibration_metrics_match_direct_loop():
    kg = load_dataset("nations")
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(kg.num_entities, kg.num_relations, kg.num_entities, generator=gen) * 3
    task = ranking_task(kg, kg.valid)
    [result] = calibration_metrics(TableModel(table), task, bins=10)
    heads, relations, labels = query_labels(task, kg.num_entities)
    p = torch.sigmoid(table[heads, relations])
    n = p.numel()
    ece = 0.0
    for b in range(10):
        inside = (p >= b / 10) & (p < (b + 1) / 10) if b < 9 else (p >= 0.9)
        if inside.any():
            ece += inside.sum().item() / n * abs(labels[inside].double().mean().item() - p[inside].double().mean().item())
    assert result["ece"] == pytest.approx(ece, rel=1e-6)
    assert result["brier"] == pytest.approx(((p - labels.double()) ** 2).mean().item(), rel=1e-6)
    top = p.argmax(1)
    conf, correct = p[torch.arange(len(p)), top], labels[torch.arange(len(p)), top]
    assert result["top1_ece"] == pytest.approx(expected_calibration_error(conf, correct, 10), rel=1e-9)
    fig = reliability_diagram(result["reliability"], "test")
    assert len(fig.axes) == 1
