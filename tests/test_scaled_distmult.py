"""scaled_distmult (issue 18): KD-DistMult as a √d-wide DistMult times one scalar per query."""

import math

import pytest
import torch
import torch.nn.functional as F
from hydra import compose

from kdkge import app
from kdkge.models import build_model
from test_models import bn, randomise, slow_kd_distmult  # tests/ is on sys.path


def slow_scaled(m, h, r, t):
    hs, rs = bn(m.entities.weight[h, 0], m.norm_head), bn(m.relations.weight[r, 0], m.norm_relation)
    distmult = ((hs * rs) * m.entities.weight[t, 0]).sum()
    if m.variant == "temperature":
        return F.softplus(m.temperature[r, 0, 0]) * distmult
    dot = (hs * rs).sum()
    return (dot.abs() if m.variant == "abs" else dot) * distmult


@pytest.mark.parametrize("variant", ["dot", "abs", "temperature"])
def test_scores_match_the_slow_formula(variant):
    model = randomise(build_model("scaled_distmult", 7, 4, 16, variant=variant).double())
    h, r = torch.tensor([0, 3, 6]), torch.tensor([1, 0, 3])
    scores = model.score_all_tails(h, r)
    for b in range(3):
        for t in range(7):
            assert torch.allclose(scores[b, t], slow_scaled(model, h[b], r[b], t), rtol=1e-12)


def test_dot_variant_is_exactly_kd_distmult_in_scores_and_gradients():
    """Same weights, training mode (batch statistics), float64: equal scores and equal gradients."""
    kd = randomise(build_model("kd_distmult", 9, 5, 25).double()).train()
    scaled = build_model("scaled_distmult", 9, 5, 25, variant="dot").double().train()
    scaled.load_state_dict(kd.state_dict())
    h, r = torch.tensor([0, 3, 8, 3, 1]), torch.tensor([1, 0, 4, 2, 2])
    weights = torch.randn(5, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, b = kd.score_all_tails(h, r), scaled.score_all_tails(h, r)
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-13)
    (a * weights).sum().backward()
    (b * weights).sum().backward()
    for (name, p), q in zip(kd.named_parameters(), scaled.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-12, atol=1e-13, msg=name)
    kd.eval()
    assert torch.allclose(kd.score_all_tails(h[:1], r[:1])[0, 2], slow_kd_distmult(kd, h[0], r[0], 2), rtol=1e-12)


def test_parameter_counts():
    for variant, extra in (("dot", 0), ("abs", 0), ("temperature", 93)):
        model = build_model("scaled_distmult", 136, 93, 256, variant=variant)
        assert model.num_parameters == (136 + 93 + 4) * 16 + extra  # KD-DistMult: 3,728 on the 2022 UMLS vocabulary
    assert build_model("kd_distmult", 136, 93, 256).num_parameters == 3728


def test_temperature_starts_at_one_and_is_learned():
    model = build_model("scaled_distmult", 5, 3, 4, variant="temperature")
    assert torch.allclose(F.softplus(model.temperature), torch.ones(3, 1, 1))
    assert model.temperature.requires_grad


def test_unknown_variant_is_a_one_line_error(hydra_conf):
    with pytest.raises(app.ConfigError, match=r"no variant 'sign': use model.options.variant=dot, abs or temperature"):
        app.validate(compose("train", overrides=["model=scaled_distmult", "model.options.variant=sign"]))
