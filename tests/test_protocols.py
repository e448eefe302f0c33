"""protocol=paper_code: the authors' splits, losses and evaluation, against an independent
transcription of their code (tests/reference/dice_2022.py, from dice-embeddings ca983cc)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from kdkge.data import DATA_ROOT, with_reciprocals
from kdkge.data_2022 import INVERSE_SUFFIX, NAN_NAME, load_dataset_2022
from kdkge.evaluation import evaluate_sorted_stacked, paper_ranking_task
from kdkge.experiment import RunSpec, run, run_one
from kdkge.losses import LabelRelaxation2022Loss, SoftmaxCrossEntropyLoss, build_loss
from kdkge.models import build_model
from kdkge.tables import load_paper_tables
from reference import dice_2022 as ref  # tests/ is on sys.path

# Table 1 of the paper: entities, relations, train, valid, test (with reciprocals)
TABLE_1 = {"umls": (136, 93, 10_432, 1_304, 1_965), "kinship": (105, 51, 17_088, 2_136, 3_210)}


def reference_frames(name, noise_rate=None):
    folder = DATA_ROOT / name
    frames = [ref.read_split(folder / f"{split}.txt") for split in ("train", "valid", "test")]
    rng = np.random.RandomState(1) if noise_rate else None
    return ref.splits_2022(*frames, noise_rate=noise_rate, rng=rng)


# --------------------------------------------------------------------------- splits


@pytest.mark.parametrize("name", ["umls", "kinship"])
def test_the_2022_splits_give_table_1(name):
    kg = load_dataset_2022(name)
    entities, relations, train, valid, test = TABLE_1[name]
    assert (kg.num_entities, kg.num_relations) == (entities, relations)
    assert len(kg.training_triples()) == train
    assert len(with_reciprocals(kg.valid, len(kg.relations))) == valid
    assert len(kg.paper_test) == test


@pytest.mark.parametrize("name, nan_rows, inverse_rows, wrong_tails", [("umls", 643, 661, 654), ("kinship", 1062, 1074, 1064)])
def test_nan_rows_and_mis_targeted_inverse_rows(name, nan_rows, inverse_rows, wrong_tails):
    kg = load_dataset_2022(name)
    nan_entity, nan_relation = kg.entities.index(NAN_NAME), 2 * len(kg.relations)
    assert kg.num_relations == nan_relation + 1 and kg.entities[-1] == NAN_NAME
    test = kg.paper_test
    assert int(((test[:, 0] == nan_entity) & (test[:, 1] == nan_relation)).sum()) == nan_rows
    n = len(kg.test)
    assert torch.equal(test[:n], kg.test)  # the true triples first
    inverse = test[n : 2 * n]
    assert len(inverse) == inverse_rows and bool((inverse[:, 1] >= len(kg.relations)).all())
    assert int((inverse[:, 2] != kg.test[:, 0]).sum()) == wrong_tails  # tails are validation subjects


@pytest.mark.parametrize("name", ["umls", "kinship"])
def test_splits_and_vocabulary_equal_the_transcription_of_the_authors_pandas(name):
    train, valid, test, entities, relations = reference_frames(name)
    kg = load_dataset_2022(name)
    assert list(kg.entities) == [NAN_NAME if isinstance(e, float) else e for e in entities]
    ours = [kg.relation_name(i) if i < 2 * len(kg.relations) else None for i in range(kg.num_relations)]
    theirs = [None if isinstance(r, float) else r for r in relations]
    assert [r.replace("^-1", INVERSE_SUFFIX) if r else r for r in ours] == theirs
    theirs_test = ref.to_index(test, entities, relations)
    assert np.array_equal(kg.paper_test.numpy(), theirs_test)  # our ids are the authors' ids


def test_noise_is_the_authors_draw():
    kg = load_dataset_2022("umls", noise_ratio=0.1, seed=1)
    train, *_ , entities, relations = reference_frames("umls", noise_rate=0.1)
    theirs = ref.to_index(train, entities, relations)
    assert np.array_equal(kg.training_triples().numpy(), theirs)
    assert len(kg.noise_after_reciprocals) == int(0.1 * 10_432)


def test_every_parameter_count_the_paper_prints_is_reproduced():
    """Tables 2-6: |Θ| of every run row with a size, computed from the model on the 2022 vocabulary."""
    paper = load_paper_tables()
    rows = paper[(paper.kind == "run") & paper.params.notna() & paper.dim.notna()]
    assert len(rows) > 150
    graphs = {name: load_dataset_2022(name) for name in ("umls", "kinship")}
    mismatches = []
    for _, row in rows.drop_duplicates(["dataset", "model", "dim", "params"]).iterrows():
        kg = graphs[row.dataset]
        got = build_model(row.model, kg.num_entities, kg.num_relations, int(row.dim)).num_parameters
        if got != int(row.params):
            mismatches.append((row.table, row.dataset, row.model, int(row.dim), int(row.params), got))
    assert not mismatches


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("calibration, alpha, reference", [
    ("none", None, lambda z, t: ref.ce_loss(z, t)),
    ("ls", 0.1, lambda z, t: ref.ls_loss(z, t, 0.1)),
    ("ls", 0.2, lambda z, t: ref.ls_loss(z, t, 0.2)),
    ("lr", 0.1, lambda z, t: ref.lr_loss(z, t, 0.1)),
    ("lr", 0.2, lambda z, t: ref.lr_loss(z, t, 0.2)),
])
def test_paper_code_losses_equal_the_authors_functions(calibration, alpha, reference):
    gen = torch.Generator().manual_seed(3)
    for scale in (0.5, 3.0):
        z = (torch.randn(9, 13, generator=gen, dtype=torch.float64) * scale).requires_grad_()
        t = torch.randint(13, (9,), generator=gen)
        ours = build_loss(calibration, alpha, "softmax_ce", "paper_code")(z, torch.arange(9), t)
        (g_ours,) = torch.autograd.grad(ours, z)
        theirs = reference(z, t)
        (g_theirs,) = torch.autograd.grad(theirs, z)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-15)


def test_hand_values():
    z = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # softmax = (.25, .75)
    assert SoftmaxCrossEntropyLoss()(z, torch.arange(1), torch.tensor([1])).item() == pytest.approx(-math.log(0.75))
    # LS 0.2: target (.8 + .1, .1)
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    assert SoftmaxCrossEntropyLoss(0.2)(z, torch.arange(1), torch.tensor([1])).item() == pytest.approx(expected)
    # LR 0.2, p_true = .25 ≤ .8: KL((.8, .2) ‖ (.25, .75)) / (B·|E| = 2) · (1 row of 1 outside)
    kl = 0.8 * math.log(0.8 / 0.25) + 0.2 * math.log(0.2 / 0.75)
    assert LabelRelaxation2022Loss(0.2)(z, torch.arange(1), torch.tensor([0])).item() == pytest.approx(kl / 2)
    # p_true = .75 ≤ .8 still outside; with α = .3 (.75 > .7) the only row is inside: loss 0
    assert LabelRelaxation2022Loss(0.3)(z, torch.arange(1), torch.tensor([1])).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", [SoftmaxCrossEntropyLoss(), SoftmaxCrossEntropyLoss(0.1), LabelRelaxation2022Loss(0.1)])
def test_paper_code_losses_are_finite_at_saturated_logits(loss, dtype):
    z = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [3e4, 0.0, -3e4]], dtype=dtype, requires_grad=True)
    value = loss(z, torch.arange(3), torch.tensor([0, 1, 2]))
    (grad,) = torch.autograd.grad(value, z)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


def test_softmax_losses_refuse_several_true_tails_per_row():
    z = torch.zeros(2, 4)
    with pytest.raises(ValueError, match="exactly one true tail per score row"):
        SoftmaxCrossEntropyLoss()(z, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 2]))


# --------------------------------------------------------------------------- evaluation, training


def test_paper_test_metrics_equal_the_authors_evaluation():
    [result] = run([RunSpec(dataset="umls", model="kd_rel_distmult", dim=16, epochs=3)], progress=False)
    kg, model = result.kg, result.model.eval()
    train, valid, test, entities, relations = reference_frames("umls")
    vocab = ref.er_vocab_2022(*(ref.to_index(f, entities, relations) for f in (train, valid, test)))
    with torch.no_grad():
        theirs = ref.evaluate_2022(lambda h, r: model.score_all_tails(h, r), ref.to_index(test, entities, relations), vocab)
    ours = result.metrics["paper_test"]
    assert ours == pytest.approx({"mrr": theirs["MRR"], "hits@1": theirs["H@1"], "hits@3": theirs["H@3"], "hits@10": theirs["H@10"]}, rel=1e-12)
    assert evaluate_sorted_stacked(model, paper_ranking_task(kg))[0] == ours


def test_paper_code_run_logs_both_test_splits_and_the_papers_parameter_count():
    result = run_one(RunSpec(dataset="umls", model="distmult", dim=289, epochs=1), progress=False)
    groups = {"paper_test_true", "paper_test_inverse", "paper_test_nan", "paper_test_nan_chance"}  # kdkge.split_2022
    assert set(result.metrics) == {"train", "valid", "test", "paper_test"} | groups
    assert result.num_parameters == 67_915
    assert result.spec.loss == "softmax_ce"
    text = run_one(RunSpec(dataset="umls", model="distmult", dim=289, epochs=1, protocol="paper_text"), progress=False)
    assert set(text.metrics) == {"train", "valid", "test"} and text.num_parameters == 67_337


def test_stacked_paper_code_calibrations_equal_separate_runs():
    """Softmax CE, CE label smoothing and the authors' label relaxation stacked (float64)."""
    base = RunSpec(dataset="nations", model="kd_distmult", dim=16, epochs=3, batch_size=256, dtype="float64")
    specs = [dataclasses.replace(base, calibration=c, alpha=a) for c, a in (("none", None), ("ls", 0.1), ("lr", 0.2))]
    for spec, together in zip(specs, run(specs, progress=False)):
        alone = run_one(spec, progress=False)
        assert together.losses == pytest.approx(alone.losses, rel=1e-9)
        for split in ("train", "valid", "test", "paper_test"):
            assert together.metrics[split] == pytest.approx(alone.metrics[split], rel=1e-9, abs=1e-12)
