"""Negative sampling (issue 8, "bigger graphs"): candidate scoring, sparse gradients, lazy Adam,
the training strategy end to end (determinism, stacking, resume) and its configuration."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from kdkge import app
from kdkge.config import CONF_DIR
from kdkge.experiment import RunSpec, run, run_one
from kdkge.losses import build_loss, stacked_losses
from kdkge.models import available_models, build_model
from kdkge.training import SparseAdam, _NegativeSampler
from test_training import assert_stacked_equals_separate  # tests/ is on sys.path (pytest's prepend import mode)

FAST = dict(dataset="nations", epochs=3, batch_size=256, strategy="negsamp", num_negatives=5, protocol="paper_text")


def model_with_weights(name, stack=1, seed=0):
    dim = 16
    model = build_model(name, 30, 7, dim, stack=stack)
    model.reset_parameters(list(range(seed, seed + stack)))
    return model.double().train()


@pytest.mark.parametrize("name", available_models())
def test_tail_vectors_are_rows_of_tail_embeddings(name):
    model = model_with_weights(name, stack=2)
    idx = torch.tensor([3, 0, 29, 3])
    assert torch.equal(model.tail_vectors(idx), model.tail_embeddings()[idx])
    per_slice = torch.tensor([[1, 2], [5, 5], [29, 0]])
    expected = torch.stack([model.tail_embeddings()[per_slice[:, k], k] for k in range(2)], dim=1)
    assert torch.equal(model.tail_vectors(per_slice), expected)


@pytest.mark.parametrize("name", available_models())
def test_candidate_scores_equal_the_all_tails_scores_at_those_tails(name):
    model = model_with_weights(name, stack=2)
    h, r = torch.tensor([0, 4, 9, 4]), torch.tensor([1, 6, 0, 6])
    every = model.score_all_tails_stacked(h, r)  # [K, B, |E|]; training-mode batch norm over the same batch
    shared = torch.tensor([[2, 0, 29], [5, 5, 1], [7, 8, 9], [0, 1, 2]])
    got = model.score_tails_stacked(h, r, shared)  # [K, B, 3]
    expected = torch.stack([every[k].gather(1, shared) for k in range(2)])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    own = torch.randint(30, (4, 2, 3), generator=torch.Generator().manual_seed(1))  # [B, K, n]
    got = model.score_tails_stacked(h, r, own)
    expected = torch.stack([every[k].gather(1, own[:, k]) for k in range(2)])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["distmult", "kd_distmult", "kd_complex"])
@pytest.mark.parametrize("per_slice", [False, True])
def test_sparse_gradients_equal_dense_gradients(name, per_slice):
    dense, sparse = model_with_weights(name, stack=2), model_with_weights(name, stack=2).use_sparse_gradients()
    h, r = torch.tensor([0, 4, 9, 4]), torch.tensor([1, 6, 0, 6])
    if per_slice:
        h, r = torch.stack([h, h.flip(0)], 1), torch.stack([r, r.flip(0)], 1)
    tails = torch.tensor([[2, 0, 29], [5, 5, 1], [7, 8, 9], [0, 1, 2]])
    for model in (dense, sparse):
        model.score_tails_stacked(h, r, tails).pow(2).sum().backward()
    for (n, a), b in zip(dense.named_parameters(), sparse.parameters()):
        if b.grad.is_sparse:
            assert n.endswith("weight") and any(b is p for p in sparse.embedding_parameters())
            b = b.grad.to_dense()
        else:
            b = b.grad
        torch.testing.assert_close(b, a.grad, rtol=1e-12, atol=1e-12, msg=n)
    assert all(p.grad.is_sparse for p in sparse.embedding_parameters())


def test_sparse_adam_updates_only_touched_rows_and_matches_adam_on_them():
    model = build_model("distmult", 50, 4, 8)
    model.reset_parameters([1])
    model = model.double().train()
    reference = build_model("distmult", 50, 4, 8).double().train()
    reference.load_state_dict(model.state_dict())
    model.use_sparse_gradients()
    lazy, adam = SparseAdam(model, 0.01, torch.device("cpu")), torch.optim.Adam(reference.parameters(), lr=0.01)
    h, r, tails = torch.tensor([0, 1, 2]), torch.tensor([0, 1, 3]), torch.tensor([[3, 4], [5, 6], [7, 3]])
    for m, opt in ((model, lazy), (reference, adam)):
        opt.zero_grad()
        F.logsigmoid(m.score_tails_stacked(h, r, tails)).sum().backward()  # batch norm makes a plain sum's head gradients vanish
        opt.step()
    touched = torch.zeros(50, dtype=torch.bool)
    touched[[0, 1, 2, 3, 4, 5, 6, 7]] = True
    after, expected = model.entities.weight[:, 0], reference.entities.weight[:, 0]
    # rows not looked up: SparseAdam leaves them; dense Adam leaves them too on step 1 (zero grad,
    # zero moments), so the difference between the optimizers shows only in later steps
    # first step: Adam moves by lr·g/(|g| + ε), SparseAdam (ε added before the bias correction) by
    # lr·g/(|g| + ε/√(1 − β₂)) = lr·g/(|g| + 31.6·ε): equal up to a relative 3.2e-7/|g|
    clear = reference.entities.weight.grad[:, 0].abs() > 1e-3
    assert clear[touched].float().mean() > 0.8
    torch.testing.assert_close(after[touched[:, None] & clear], expected[touched[:, None] & clear], rtol=1e-3, atol=0)
    torch.testing.assert_close(after[~touched], expected[~touched])
    state = lazy.state_dict()
    fresh = SparseAdam(model, 0.01, torch.device("cpu"))
    fresh.load_state_dict(state)
    with pytest.raises(ValueError, match="not a sparse-Adam state"):
        fresh.load_state_dict(adam.state_dict())


def test_negative_sampler_puts_the_true_tail_first_and_is_reproducible():
    sampler = _NegativeSampler(num_entities=40, k=6, stack=2, device=torch.device("cpu"))
    true_tails = torch.tensor([3, 39, 0])
    a = sampler.candidates(true_tails, [torch.Generator().manual_seed(7)], [0, 0])
    b = sampler.candidates(true_tails, [torch.Generator().manual_seed(7)], [0, 0])
    assert a.shape == (3, 7) and torch.equal(a, b) and torch.equal(a[:, 0], true_tails)
    assert 0 <= int(a.min()) and int(a.max()) < 40
    per_slice = sampler.candidates(torch.tensor([[3, 4], [39, 1], [0, 2]]), [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)], [0, 1])
    assert per_slice.shape == (3, 2, 7) and not torch.equal(per_slice[:, 0, 1:], per_slice[:, 1, 1:])
    ks, rows, cols = sampler.positive_cells(3)
    assert ks.tolist() == [0, 0, 0, 1, 1, 1] and rows.tolist() == [0, 1, 2, 0, 1, 2] and cols.tolist() == [0] * 6


@pytest.mark.parametrize("calibration, alpha", [("none", None), ("ls", 0.2)])
def test_the_loss_over_candidates_is_the_bce_of_eq2_over_1_plus_k_columns(calibration, alpha):
    scores = torch.randn(1, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    ks, rows, cols = _NegativeSampler(100, 5, 1, torch.device("cpu")).positive_cells(4)
    got = stacked_losses([build_loss(calibration, alpha)], scores, ks, rows, cols)[0]
    target = torch.zeros(4, 6, dtype=torch.float64)
    target[:, 0] = 1
    if alpha:
        target = (1 - alpha) * target + alpha / 2  # Sec. 3.3.1
    expected = F.binary_cross_entropy_with_logits(scores[0], target)  # mean over B·(1 + k)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("sparse", [False, True])
def test_negative_sampling_trains_deterministically(sparse):
    spec = RunSpec(model="kd_distmult", dim=16, sparse=sparse, **{**FAST, "epochs": 25})
    a, b = run_one(spec, progress=False), run_one(spec, progress=False)
    assert a.metrics == b.metrics and a.losses == b.losses
    assert a.losses[-1] < a.losses[0]
    assert a.metrics["train"]["mrr"] > 0.4  # random ranking of 14 entities gives ≈ 0.25
    other = run_one(dataclasses.replace(spec, num_negatives=3), progress=False)
    assert other.losses != a.losses


@pytest.mark.parametrize("sparse", [False, True])
def test_stacked_negative_sampling_equals_separate_runs(sparse):
    variants = [RunSpec(model="distmult", dim=9, calibration=c, alpha=al, seed=s, sparse=sparse, **FAST)
                for c, al, s in (("none", None, 1), ("lr", 0.1, 1), ("none", None, 2))]
    assert_stacked_equals_separate(variants)


class _Stop(Exception):
    pass


def test_an_interrupted_sparse_negative_sampling_run_resumes_exactly(tmp_path):
    spec = RunSpec(model="kd_rel_distmult", dim=16, sparse=True, dtype="float64", **{**FAST, "epochs": 6})
    uninterrupted = run_one(spec, progress=False)
    path = tmp_path / "state.pt"

    def stop_at_4(epoch, *_):
        if epoch == 4:
            raise _Stop  # after the epoch-3 checkpoint, before epoch 4's is written

    with pytest.raises(_Stop):
        run([spec], progress=False, checkpoint=path, checkpoint_every=1, extra_epoch_hook=stop_at_4)
    assert torch.load(path, weights_only=False)["epoch"] == 3
    resumed = run([spec], progress=False, checkpoint=path, checkpoint_every=1, resume=True)[0]
    assert resumed.losses == uninterrupted.losses and resumed.metrics == uninterrupted.metrics


def test_runspec_rejects_bad_negative_sampling_settings():
    with pytest.raises(ValueError, match="num_negatives=0 must be a positive integer"):
        RunSpec(strategy="negsamp", num_negatives=0, protocol="paper_text").validate()
    with pytest.raises(ValueError, match="protocol=paper_code trains 1vsAll only"):
        RunSpec(strategy="negsamp", num_negatives=4).validate()
    with pytest.raises(ValueError, match="sparse gradients need negative sampling"):
        RunSpec(strategy="1vsall", sparse=True, protocol="paper_text").validate()
    from kdkge.training import train_epochs

    with pytest.raises(ValueError, match="need negative sampling"):
        train_epochs(build_model("distmult", 3, 3, 4), None, [build_loss()], epochs=1, batch_size=2, lr=0.01,
                     seeds=[1], device="cpu", sparse=True)


def compose_config(*overrides):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["protocol=paper_text", *overrides])  # negsamp: paper_text only


def test_negsamp_config_composes_and_reaches_the_run_spec():
    cfg = compose_config("strategy=negsamp", "strategy.num_negatives=8", "strategy.sparse=true", "model=kd_distmult")
    spec = app.run_spec(cfg)
    assert (spec.strategy, spec.num_negatives, spec.sparse) == ("negsamp", 8, True)
    assert app.default_run_name(cfg) == "kd_distmult-umls-d256-negsamp8-sparse-text"
    assert app.config_hash(cfg) != app.config_hash(compose_config("strategy=negsamp", "model=kd_distmult"))


def test_negative_sampling_keys_leave_other_strategies_hashes_unchanged():
    for strategy in ("1vsall", "kvsall"):
        data = app.semantic_config(compose_config(f"strategy={strategy}"))
        assert data["loss"] == {"strategy": strategy}  # as before negative sampling existed


@pytest.mark.parametrize("overrides, message", [
    (["strategy.sparse=true"], "strategy.sparse applies to negative sampling only: add strategy=negsamp"),
    (["strategy.num_negatives=4"], "strategy.num_negatives applies to negative sampling only"),
    (["strategy=negsamp", "strategy.num_negatives=0"], "strategy.num_negatives=0 must be a positive integer"),
])
def test_bad_negative_sampling_config_is_a_one_line_error(overrides, message):
    with pytest.raises(app.ConfigError, match=message):
        app.validate(compose_config(*overrides))


def test_scale_benchmark_smoke(tmp_path):
    """``python -m kdkge.bench_scale`` end to end on a tiny synthetic graph: every row measured, report written."""
    import json
    import subprocess
    import sys

    out = tmp_path / "scale.md"
    proc = subprocess.run(
        [sys.executable, "-m", "kdkge.bench_scale", "--entities", "500", "--relations", "5", "--triples", "3000",
         "--dim", "16", "--negatives", "4", "--batch-size", "256", "--dense-steps", "2", "--onevsall-steps", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    assert [(r["model"], r["strategy"], r["sparse"]) for r in results] == [
        ("kd_distmult", "negsamp", True), ("distmult", "negsamp", True), ("kd_distmult", "negsamp", False),
        ("distmult", "negsamp", False), ("kd_distmult", "1vsall", False), ("distmult", "1vsall", False)]
    assert all(r["peak_mib"] > r["data_mib"] > 0 and r["epoch_seconds"] > 0 for r in results)
    assert results[0]["steps_per_epoch"] == 24 and not results[0]["extrapolated"]  # 6,000 points / 256
    assert results[2]["steps_timed"] == 2 and results[2]["extrapolated"]
    assert results[0]["num_parameters"] == (500 + 10 + 4) * 4 and results[1]["num_parameters"] == (500 + 10 + 6) * 16
    text = out.read_text()
    assert "| KD-DistMult | negative sampling (k = 4), sparse Adam |" in text and "KD-DistMult uses" in text


@pytest.mark.parametrize("per_slice", [False, True])
def test_lazy_adam_equals_torch_sparse_adam(per_slice):
    """kdkge's O(rows touched) LazyAdam against torch.optim.SparseAdam over several steps (float64)."""
    from kdkge.training import LazyAdam

    ours, ref = model_with_weights("kd_rel_distmult", stack=2), model_with_weights("kd_rel_distmult", stack=2)
    for m in (ours, ref):
        m.use_sparse_gradients()
    opts = (LazyAdam(ours.embedding_parameters(), lr=0.01), torch.optim.SparseAdam(ref.embedding_parameters(), lr=0.01))
    gen = torch.Generator().manual_seed(5)
    for _ in range(4):  # different rows each step: untouched rows must keep their moments
        h, r = torch.randint(30, (6,), generator=gen), torch.randint(7, (6,), generator=gen)
        if per_slice:
            h, r = torch.stack([h, h.flip(0)], 1), torch.stack([r, r.flip(0)], 1)
        tails = torch.randint(30, (6, 3), generator=gen)
        for m, opt in zip((ours, ref), opts):
            opt.zero_grad()
            F.logsigmoid(m.score_tails_stacked(h, r, tails)).sum().backward()
            opt.step()
    for a, b in zip(ours.embedding_parameters(), ref.embedding_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    state = opts[0].state[ours.embedding_parameters()[0]]
    ref_state = opts[1].state[ref.embedding_parameters()[0]]
    torch.testing.assert_close(state["exp_avg_sq"], ref_state["exp_avg_sq"], rtol=1e-12, atol=1e-16)


def test_eval_interval_enters_the_hash_only_with_early_stopping():
    """patience > 0 makes eval_every part of what a run computes; negative sampling does not."""
    for strategy in ("1vsall", "negsamp"):
        plain = [app.config_hash(compose_config(f"strategy={strategy}", f"eval_every={n}")) for n in (50, 100)]
        assert plain[0] == plain[1], strategy
        stopped = [app.config_hash(compose_config(f"strategy={strategy}", "patience=2", f"eval_every={n}")) for n in (50, 100)]
        assert stopped[0] != stopped[1], strategy
        assert "eval_every" in app.semantic_config(compose_config(f"strategy={strategy}", "patience=2"))
