"""Training loop and Python API: determinism, learning, stacking, checkpoints, errors."""

import dataclasses

import pytest
import torch

from kdkge.experiment import RunSpec, load_checkpoint, run, run_one, save_checkpoint
from kdkge.training import NonFiniteLoss, batch_order, resolve_device

FAST = dict(dataset="nations", epochs=3, batch_size=256, protocol="paper_text")  # the BCE machinery; paper_code has its own tests


def test_same_seed_same_metrics_on_cpu():
    spec = RunSpec(model="kd_distmult", dim=16, **FAST)
    a, b = run_one(spec, progress=False), run_one(spec, progress=False)
    assert a.metrics == b.metrics and a.losses == b.losses
    c = run_one(dataclasses.replace(spec, seed=2), progress=False)
    assert c.losses != a.losses


@pytest.mark.parametrize("model, dim", [("distmult", 16), ("kd_rel_distmult", 16), ("kd_distmult", 16)])
@pytest.mark.parametrize("strategy", ["1vsall", "kvsall"])
def test_training_learns(model, dim, strategy):
    result = run_one(RunSpec(model=model, dim=dim, strategy=strategy, dataset="nations", epochs=30, batch_size=256,
                             protocol="paper_text"), progress=False)
    assert result.losses[-1] < result.losses[0]
    assert result.metrics["train"]["mrr"] > 0.4  # random ranking of 14 entities gives ≈ 0.25
    assert set(result.metrics) == {"train", "valid", "test"}


def assert_stacked_equals_separate(variants):
    """Training ``variants`` as one stacked model gives each the losses and metrics of its own run.

    Compared in float64: stacked and separate runs use other kernels (batched vs single products,
    other reduction splits, other MKL code paths on Intel and AMD), whose float32 rounding differs
    by ~1e-5 after a few epochs; in float64 the same amplification stays far below 1e-9.
    """
    variants = [dataclasses.replace(v, dtype="float64") for v in variants]
    stacked = run(variants, progress=False)
    for spec, together in zip(variants, stacked):
        alone = run_one(spec, progress=False)
        assert together.losses == pytest.approx(alone.losses, rel=1e-9)
        for split in ("train", "valid", "test"):
            assert together.metrics[split] == pytest.approx(alone.metrics[split], rel=1e-9, abs=1e-12)


def test_stacked_calibrations_equal_separate_runs():
    assert_stacked_equals_separate(
        [RunSpec(calibration=c, alpha=a, model="distmult", dim=9, **FAST) for c, a in (("none", None), ("ls", 0.1), ("lr", 0.2))])


def test_stacking_requires_compatible_specs():
    with pytest.raises(ValueError, match="stacked runs must agree"):
        run([RunSpec(dim=4, **FAST), RunSpec(dim=9, **FAST)], progress=False)


def test_checkpoint_roundtrip_and_predict(tmp_path):
    result = run_one(RunSpec(model="kd_rel_distmult", dim=16, **FAST), progress=False)
    path = save_checkpoint(result, tmp_path / "model.pt")
    loaded = load_checkpoint(path)
    h, r = torch.tensor([0, 3]), torch.tensor([1, 60])
    assert torch.equal(loaded.model.score_all_tails(h, r), result.model.score_all_tails(h, r))
    head = result.kg.entities[0]
    relation = result.kg.relations[2]
    top = loaded.predict(head, relation, k=3)
    assert len(top) == 3 and all(name in result.kg.entities for name, _ in top)
    assert top[0][1] >= top[1][1] >= top[2][1]
    assert len(loaded.predict(head, relation + "^-1", k=100)) == result.kg.num_entities
    with pytest.raises(KeyError, match="unknown entity"):
        loaded.predict("nowhere", relation)


def test_nonfinite_loss_stops_with_epoch():
    spec = RunSpec(model="distmult", dim=4, lr=1e30, **dict(FAST, epochs=50))
    with pytest.raises(NonFiniteLoss, match=r"training loss became (nan|inf) at epoch \d+"):
        run_one(spec, progress=False)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(model="kd_distmult", dim=300), r"not a perfect square.*289 = 17² and 324 = 18²"),
        (dict(dim=0), r"dim=0 must be a positive integer"),
        (dict(epochs=-1), r"epochs=-1 must be a positive integer"),
        (dict(batch_size=0), r"batch_size=0 must be a positive integer"),
        (dict(lr=-0.01), r"lr=-0.01 must be positive"),
        (dict(noise_ratio=1.0), r"noise_ratio=1.0 must lie in \[0, 1\)"),
        (dict(calibration="ls", alpha=1.0), r"alpha in the open interval \(0, 1\)"),
        (dict(strategy="negative", protocol="paper_text"), r"strategy='negative' is unknown"),
        (dict(strategy="kvsall"), r"protocol=paper_code trains 1vsAll only"),
        (dict(protocol="paper_2021"), r"protocol='paper_2021' is unknown: use one of paper_code, paper_text"),
        (dict(loss="mse"), r"loss='mse' is unknown: use one of bce, softmax_ce"),
        (dict(protocol="paper_text", strategy="kvsall", loss="softmax_ce"), r"loss=softmax_ce needs one true tail per data point"),
        (dict(model="transe"), r"unknown model 'transe'"),
    ],
)
def test_bad_specs_fail_before_training(changes, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(**changes).validate()


def test_device_resolution():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="is not one of"):
        resolve_device("tpu")


def test_batch_order_merges_a_final_single_example():
    batches = batch_order(9, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 5]
    assert sorted(torch.cat(batches).tolist()) == list(range(9))


def test_noise_run_evaluates_clean_train():
    result = run_one(RunSpec(model="distmult", dim=4, noise_ratio=0.1, **FAST), progress=False)
    assert result.kg.num_noisy == 159


RESUME_SCRIPT = """
import sys, torch
from kdkge.experiment import RunSpec, run
run([RunSpec(model="kd_rel_distmult", dim=16, dataset="nations", epochs=int(sys.argv[2]), batch_size=256, dtype="float64")],
    progress=False, checkpoint=sys.argv[1], checkpoint_every=1, resume=True)
"""


def test_killed_run_resumes_to_identical_metrics(tmp_path):
    """kill -9 in the middle of training, resume from the checkpoint, compare to an uninterrupted run."""
    import signal
    import subprocess
    import sys
    import time

    epochs = 40
    spec = RunSpec(model="kd_rel_distmult", dim=16, dataset="nations", epochs=epochs, batch_size=256, dtype="float64")
    uninterrupted = run_one(spec, progress=False)
    path = tmp_path / "state.pt"
    proc = subprocess.Popen([sys.executable, "-c", RESUME_SCRIPT, str(path), str(epochs)])
    deadline = time.time() + 300  # a loaded machine (other jobs, the CPU matrix) can be slow to reach epoch 5
    while time.time() < deadline:
        if path.exists() and torch.load(path, weights_only=False)["epoch"] >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(path, weights_only=False)["epoch"]
    assert 5 <= killed_at < epochs, "the run should have been killed mid-training"
    resumed = run([spec], progress=False, checkpoint=path, checkpoint_every=1, resume=True)[0]
    # float64, tight: the killed process and this one may place tensors at other alignments, which
    # can move MKL's last bit (measured: 1 ulp of a loss); float32 would amplify that to ~1e-5
    for split in ("train", "valid", "test"):
        assert resumed.metrics[split] == pytest.approx(uninterrupted.metrics[split], rel=1e-12, abs=1e-15)
    assert resumed.losses == pytest.approx(uninterrupted.losses, rel=1e-12)


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path):
    path = tmp_path / "state.pt"
    run([RunSpec(model="distmult", dim=4, **FAST)], progress=False, checkpoint=path, checkpoint_every=1)
    with pytest.raises(ValueError, match="belongs to other settings"):
        run([RunSpec(model="distmult", dim=9, **FAST)], progress=False, checkpoint=path, checkpoint_every=1, resume=True)


def test_model_selection_keeps_the_best_validation_model():
    spec = RunSpec(model="distmult", dim=16, dataset="nations", epochs=40, batch_size=256)
    result = run([spec], progress=False, eval_every=5, select_best=True)[0]
    assert result.best_epoch is not None and result.best_epoch % 5 == 0
    assert result.best_metrics["valid"]["mrr"] >= result.metrics["valid"]["mrr"]
    from kdkge.evaluation import evaluate
    from kdkge.experiment import evaluation_tasks

    again = evaluate(result.best_model, evaluation_tasks(result.kg, ("valid",))["valid"])
    assert again["mrr"] == pytest.approx(result.best_metrics["valid"]["mrr"])
    plain = run_one(spec, progress=False)
    assert plain.metrics == result.metrics  # tracking the best does not change training


def test_early_stopping_with_patience():
    spec = RunSpec(model="distmult", dim=16, dataset="nations", epochs=400, batch_size=256)
    result = run([spec], progress=False, eval_every=5, patience=2)[0]
    assert result.last_epoch < 400
    assert result.last_epoch - result.best_epoch >= 10  # two evaluations without improvement
    with pytest.raises(ValueError, match="do not stack it"):
        run([spec, dataclasses.replace(spec, calibration="ls", alpha=0.1)], progress=False, eval_every=5, patience=2)
