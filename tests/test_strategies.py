"""Training strategies are a registry like models and losses: one file plus one config adds one."""

import textwrap

import pytest
import torch

from kdkge.config import CONF_DIR
from kdkge.experiment import RunSpec, run_one
from kdkge.strategies import STRATEGY_CLASSES, available_strategies, build_strategy

FAST = dict(dataset="nations", epochs=3, batch_size=256, protocol="paper_text")


def test_every_registered_strategy_has_a_config_file_and_back():
    assert available_strategies()[:3] == ("1vsall", "kvsall", "negsamp")
    assert {p.stem for p in (CONF_DIR / "strategy").glob("*.yaml")} == set(STRATEGY_CLASSES)
    for name in STRATEGY_CLASSES:
        assert f"name: {name}" in (CONF_DIR / "strategy" / f"{name}.yaml").read_text()


def test_the_strategy_of_a_spec_carries_its_options():
    negsamp = build_strategy(RunSpec(strategy="negsamp", num_negatives=7, sparse=True, protocol="paper_text"))
    assert (negsamp.num_negatives, negsamp.sparse) == (7, True)
    assert not build_strategy(RunSpec(strategy="kvsall", protocol="paper_text")).one_tail_per_point
    with pytest.raises(ValueError, match="strategy='2vsall' is unknown: use 1vsall, kvsall or negsamp"):
        RunSpec(strategy="2vsall", protocol="paper_text").validate()
    with pytest.raises(ValueError, match="loss=softmax_ce needs one true tail per data point: use strategy=1vsall or negsamp"):
        RunSpec(strategy="kvsall", protocol="paper_text", loss="softmax_ce").validate()


TOY = '''
"""Toy strategy (a test): 1vsAll data points, scored against the first `n` entities and the true tail."""
import torch

from kdkge.data import one_vs_all
from kdkge.strategies.base import TrainingStrategy, register


@register
class FirstEntities(TrainingStrategy):
    name = "test_first_entities"

    def labels(self, triples):
        return one_vs_all(triples)

    def scorer(self, model, labels, losses, generators, slot, device):
        stack = len(losses)
        first = torch.arange(4, device=device)

        def score(idx, per_slice, h, r):
            tails = torch.cat([labels.tails[idx].unsqueeze(-1), first.expand(len(idx), -1)], dim=-1)  # [B, 1 + 4]
            ks = torch.arange(stack, device=device).repeat_interleave(len(idx))
            rows = torch.arange(len(idx), device=device).repeat(stack)
            return model.score_tails_stacked(h, r, tails), ks, rows, torch.zeros_like(rows), None

        return score
'''


def test_a_new_strategy_is_one_file(tmp_path):
    """What "Adding a training strategy" in the README shows: one module registers a class, and a run
    trains with it by name (plus conf/strategy/<name>.yaml with `name: <name>` for train.py)."""
    import importlib.util

    path = tmp_path / "first_entities.py"
    path.write_text(textwrap.dedent(TOY))
    module_spec = importlib.util.spec_from_file_location("test_first_entities", path)
    module_spec.loader.exec_module(importlib.util.module_from_spec(module_spec))  # registers the class
    try:
        assert "test_first_entities" in STRATEGY_CLASSES
        spec = RunSpec(model="distmult", dim=8, strategy="test_first_entities", dtype="float64", **FAST)
        result = run_one(spec, progress=False)
        assert result.losses[-1] < result.losses[0]
        assert set(result.metrics) == {"train", "valid", "test"}  # evaluation still ranks all entities
        again = run_one(spec, progress=False)
        assert again.losses == result.losses  # reproducible like every strategy
    finally:
        STRATEGY_CLASSES.pop("test_first_entities", None)


def test_unstack_slices_every_stacked_tensor_and_keeps_the_options():
    from kdkge.models import build_model

    stacked = build_model("scaled_distmult", 5, 4, 16, stack=3, variant="temperature").double()
    stacked.reset_parameters([1, 2, 3])
    with torch.no_grad():
        stacked.temperature.copy_(torch.randn(stacked.temperature.shape, dtype=torch.float64))
    h, r = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3])
    stacked.eval()
    scores = stacked.score_all_tails_stacked(h, r)
    for k in range(3):
        single = stacked.unstack(k)
        assert single.stack == 1 and single.options == {"variant": "temperature"}
        torch.testing.assert_close(single.eval().score_all_tails(h, r), scores[k], rtol=1e-12, atol=1e-12)  # other kernels (K = 1 vs 3)
    assert stacked.unstack(0) is not stacked and build_model("distmult", 5, 4, 4).unstack(0).stack == 1


def test_unstack_refuses_a_tensor_without_a_stack_axis():
    from kdkge.models import build_model

    model = build_model("distmult", 5, 4, 4, stack=2)
    model.register_buffer("odd", torch.zeros(7))
    with pytest.raises(ValueError, match="override slice_own_tensor"):
        model.unstack(1)
