"""ComplEx and its Kronecker variants against slow formulas in complex arithmetic with torch.kron."""

import math

import pytest
import torch

from kdkge.data import load_dataset
from kdkge.experiment import RunSpec, run_one
from kdkge.models import build_model
from tests.test_models import bn, randomise


def as_complex(x):
    re, im = x.chunk(2, dim=-1)
    return torch.complex(re, im)


def slow_complex(m, h, r, t):
    hv = as_complex(bn(m.entities.weight[h, 0], m.norm_head))
    rv = as_complex(bn(m.relations.weight[r, 0], m.norm_relation))
    tv = as_complex(m.entities.weight[t, 0])
    return (hv * rv * tv.conj()).sum().real  # Re(Σ h r conj(t))


def slow_kd_rel_complex(m, h, r, t):
    re, im = m.relations.weight[r, 0].chunk(2)
    rebuilt = torch.cat([torch.kron(re, re), torch.kron(im, im)])
    hv = as_complex(bn(m.entities.weight[h, 0], m.norm_head))
    rv = as_complex(bn(rebuilt, m.norm_relation))
    tv = as_complex(m.entities.weight[t, 0])
    return (hv * rv * tv.conj()).sum().real


def slow_kd_complex(m, h, r, t):
    h_re, h_im = bn(m.entities.weight[h, 0], m.norm_head).chunk(2)
    r_re, r_im = bn(m.relations.weight[r, 0], m.norm_relation).chunk(2)
    H = torch.complex(torch.kron(h_re, h_re), torch.kron(h_im, h_im))
    R = torch.complex(torch.kron(r_re, r_re), torch.kron(r_im, r_im))
    Q = (H * R).reshape(m.root, m.root)  # R(·) of Eq. 9, per part
    t_re, t_im = m.entities.weight[t, 0].chunk(2)
    return sum(Q[i].real @ t_re + Q[i].imag @ t_im for i in range(m.root))


SLOW = {"complex": slow_complex, "kd_rel_complex": slow_kd_rel_complex, "kd_complex": slow_kd_complex}


@pytest.mark.parametrize("name, options", [("complex", {}), ("kd_rel_complex", {}), ("kd_complex", {}), ("kd_complex", {"explicit": True})])
def test_scores_match_slow_complex_formula(name, options):
    model = randomise(build_model(name, 6, 4, 9, **options).double())
    h, r = torch.tensor([0, 5, 2]), torch.tensor([3, 1, 1])
    scores = model.score_all_tails(h, r)
    for b in range(3):
        for t in range(6):
            assert torch.allclose(scores[b, t], SLOW[name](model, h[b], r[b], t), rtol=1e-10, atol=1e-10)


def test_kd_complex_closed_form_equals_explicit_in_scores_and_gradients():
    closed = randomise(build_model("kd_complex", 7, 5, 16).double())
    explicit = build_model("kd_complex", 7, 5, 16, explicit=True).double()
    explicit.load_state_dict(closed.state_dict())
    explicit.eval()
    h, r = torch.tensor([0, 6, 3, 3]), torch.tensor([4, 0, 2, 2])
    a, b = closed.score_all_tails(h, r), explicit.score_all_tails(h, r)
    assert torch.allclose(a, b, rtol=1e-10)
    (a ** 2).sum().backward()
    (b ** 2).sum().backward()
    for p, q in zip(closed.parameters(), explicit.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize(
    "name, formula",
    [
        ("complex", lambda E, R, d: (E + R + 4) * 2 * d),
        ("kd_rel_complex", lambda E, R, d: E * 2 * d + R * 2 * math.isqrt(d) + 8 * d),
        ("kd_complex", lambda E, R, d: (E + R + 4) * 2 * math.isqrt(d)),
    ],
)
@pytest.mark.parametrize("dim", [4, 144])
def test_complex_parameter_counts(name, formula, dim):
    kg = load_dataset("umls")
    model = build_model(name, kg.num_entities, kg.num_relations, dim)
    assert model.num_parameters == sum(p.numel() for p in model.parameters()) == formula(kg.num_entities, kg.num_relations, dim)


@pytest.mark.parametrize("name", ["kd_rel_complex", "kd_complex"])
def test_non_square_complex_dim_fails(name):
    with pytest.raises(ValueError, match=r"d=150 is not a perfect square.*144 = 12² and 169 = 13²"):
        build_model(name, 3, 2, 150)


@pytest.mark.parametrize("name", ["complex", "kd_rel_complex", "kd_complex"])
def test_complex_models_train(name):
    torch.set_num_threads(1)
    result = run_one(RunSpec(model=name, dim=16, dataset="nations", epochs=30, batch_size=256), progress=False)
    assert result.losses[-1] < result.losses[0] and result.metrics["train"]["mrr"] > 0.4
