"""Every model against an independent slow formula (explicit Kronecker products with torch.kron)."""

import math

import pytest
import torch

from kdkge.data import load_dataset
from kdkge.kronecker import batched_kron, exact_sqrt, kron_linear
from kdkge.models import available_models, build_model

PAPER_MODELS = ("distmult", "kd_rel_distmult", "kd_distmult")


def randomise(model, seed=0):
    """Random weights and batch-norm statistics so that no piece is an identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, buf in model.named_buffers():
            if "running_var" in name:
                buf.copy_(torch.rand(buf.shape, generator=gen, dtype=buf.dtype) + 0.5)
            elif "running_mean" in name:
                buf.copy_(torch.randn(buf.shape, generator=gen, dtype=buf.dtype))
    return model.eval()


def bn(x, module):
    """Eval-mode batch norm written out: (x − μ) / √(σ² + ε) · γ + β."""
    norm = module.norm
    return (x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias


def slow_distmult(m, h, r, t):
    hv, rv, tv = m.entities.weight[h, 0], m.relations.weight[r, 0], m.entities.weight[t, 0]
    q = bn(bn(hv, m.norm_head) * bn(rv, m.norm_relation), m.norm_product)
    return (q * tv).sum()  # Eq. 6


def slow_kd_rel_distmult(m, h, r, t):
    hv, rs, tv = m.entities.weight[h, 0], m.relations.weight[r, 0], m.entities.weight[t, 0]
    rr = torch.kron(rs, rs)  # Eq. 8: r ⊗ r
    q = bn(bn(hv, m.norm_head) * bn(rr, m.norm_relation), m.norm_product)
    return (q * tv).sum()


def slow_kd_distmult(m, h, r, t):
    hs = bn(m.entities.weight[h, 0], m.norm_head)
    rs = bn(m.relations.weight[r, 0], m.norm_relation)
    ts = m.entities.weight[t, 0]
    matrix = (torch.kron(hs, hs) * torch.kron(rs, rs)).reshape(m.root, m.root)  # R(·) of Eq. 9
    return sum(matrix[i] @ ts for i in range(m.root))  # Σ_i R(...)_i · t


SLOW = {"distmult": slow_distmult, "kd_rel_distmult": slow_kd_rel_distmult, "kd_distmult": slow_kd_distmult}


@pytest.mark.parametrize("name", PAPER_MODELS)
@pytest.mark.parametrize("explicit", [False, True])
def test_scores_match_slow_formula(name, explicit):
    if explicit and name != "kd_distmult":
        pytest.skip("only KD-DistMult has two scoring paths")
    options = {"explicit": True} if explicit else {}
    model = randomise(build_model(name, 7, 4, 16, **options).double())
    h, r = torch.tensor([0, 3, 6, 3]), torch.tensor([1, 0, 3, 1])
    all_scores = model.score_all_tails(h, r)
    assert all_scores.shape == (4, 7)
    for b in range(4):
        for t in range(7):
            expected = SLOW[name](model, h[b], r[b], t)
            assert torch.allclose(all_scores[b, t], expected, rtol=1e-10, atol=1e-10)
    t = torch.tensor([2, 5, 0, 6])
    assert torch.allclose(model.score_triples(h, r, t), all_scores[torch.arange(4), t], rtol=1e-12)


@pytest.mark.parametrize(
    "name, formula",
    [
        ("distmult", lambda E, R, d: (E + R + 6) * d),
        ("kd_rel_distmult", lambda E, R, d: E * d + R * math.isqrt(d) + 6 * d),
        ("kd_distmult", lambda E, R, d: (E + R + 4) * math.isqrt(d)),
    ],
)
@pytest.mark.parametrize("dataset", ["umls", "kinship"])
@pytest.mark.parametrize("dim", [4, 100, 256, 289])
def test_parameter_counts(name, formula, dataset, dim):
    kg = load_dataset(dataset)
    model = build_model(name, kg.num_entities, kg.num_relations, dim)
    counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert model.num_parameters == counted == formula(kg.num_entities, kg.num_relations, dim)


def test_paper_table2_counts_correspond_to_one_more_entity_and_relation():
    """The paper's UMLS counts (67,915 / 42,619 / 3,728) need |E| = 136, |R| = 93; the data has 135 and 92."""
    counts = {n: build_model(n, 136, 93, d).num_parameters for n, d in zip(PAPER_MODELS, (289, 289, 256))}
    assert counts == {"distmult": 67_915, "kd_rel_distmult": 42_619, "kd_distmult": 3_728}
    kg = load_dataset("umls")
    ours = {n: build_model(n, kg.num_entities, kg.num_relations, d).num_parameters for n, d in zip(PAPER_MODELS, (289, 289, 256))}
    assert ours == {"distmult": 67_337, "kd_rel_distmult": 42_313, "kd_distmult": 3_696}


@pytest.mark.parametrize("name", ["kd_rel_distmult", "kd_distmult"])
def test_non_square_dim_fails_naming_nearest_squares(name):
    with pytest.raises(ValueError, match=r"d=300 is not a perfect square.*289 = 17² and 324 = 18²"):
        build_model(name, 5, 2, 300)


def test_exact_sqrt():
    assert exact_sqrt(1) == 1 and exact_sqrt(10_000) == 100
    for bad in (0, -4, 2.0, True):
        with pytest.raises(ValueError, match="must be a positive integer"):
            exact_sqrt(bad)


def test_unknown_model_lists_available():
    with pytest.raises(ValueError, match=r"unknown model 'transe': available models are .*distmult"):
        build_model("transe", 3, 2, 4)
    assert set(PAPER_MODELS) <= set(available_models())


def test_batched_kron_matches_torch_kron():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 3, generator=gen), torch.randn(5, 4, generator=gen)
    out = batched_kron(a, b)
    assert out.shape == (5, 12)
    for i in range(5):
        assert torch.allclose(out[i], torch.kron(a[i], b[i]))


def test_kron_linear_matches_explicit_matrix():
    """Eq. 5: (X ⊗ Z) x without building X ⊗ Z."""
    gen = torch.Generator().manual_seed(2)
    X, Z = torch.randn(3, 4, generator=gen, dtype=torch.float64), torch.randn(5, 2, generator=gen, dtype=torch.float64)
    x = torch.randn(6, 8, generator=gen, dtype=torch.float64)
    expected = x @ torch.kron(X, Z).T
    assert torch.allclose(kron_linear(X, Z, x), expected, rtol=1e-12)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_xavier_normal_init_and_seeding(name):
    model = build_model(name, 300, 200, 256)
    model.reset_parameters([7])
    weight = model.entities.weight[:, 0]
    std = math.sqrt(2 / (weight.shape[0] + weight.shape[1]))
    assert abs(weight.std().item() - std) / std < 0.05
    again = build_model(name, 300, 200, 256)
    again.reset_parameters([7])
    assert torch.equal(again.entities.weight, model.entities.weight)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_tails_are_raw_embeddings_and_heads_normalised(name):
    """Tail embeddings are never normalised; the query goes through batch norm (train mode)."""
    model = build_model(name, 6, 4, 16)
    model.reset_parameters([1])
    assert model.tail_embeddings() is model.entities.weight
    model.train()
    q = model.query(torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]))
    if name != "kd_distmult":  # last op is a batch norm with unit weight: per-channel mean 0
        assert torch.allclose(q.mean(0), torch.zeros_like(q.mean(0)), atol=1e-5)


def test_stacked_slices_score_like_separate_models():
    stacked = randomise(build_model("kd_rel_distmult", 6, 4, 9, stack=3).double())
    from kdkge.experiment import unstack

    h, r = torch.tensor([0, 5, 2]), torch.tensor([3, 1, 1])
    scores = stacked.score_all_tails_stacked(h, r)
    for k in range(3):
        single = unstack(stacked, k).eval()
        assert torch.allclose(single.score_all_tails(h, r), scores[k], rtol=1e-12)
