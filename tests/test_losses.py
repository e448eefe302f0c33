"""Losses against hand-computed values and against dense reference formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdkge.losses import BCELoss, LabelRelaxationLoss, build_loss, reference_label_relaxation

Z = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # σ = (0.5, 0.75); softmax = (0.25, 0.75)
ROWS, COLS = torch.tensor([0]), torch.tensor([1])  # the true tail is entity 1


def test_bce_hand_computed():
    expected = (math.log(2) + math.log(4 / 3)) / 2  # −log(1 − .5) and −log(.75), mean over |E| = 2
    assert BCELoss()(Z, ROWS, COLS).item() == pytest.approx(expected, rel=1e-12)


def test_label_smoothing_hand_computed():
    """Sec. 3.3.1: targets 1 − α/2 = .9 for the true tail and α/2 = .1 for the others (α = .2)."""
    false_term = -(0.1 * math.log(0.5) + 0.9 * math.log(0.5))
    true_term = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    assert BCELoss(smoothing=0.2)(Z, ROWS, COLS).item() == pytest.approx((false_term + true_term) / 2, rel=1e-12)


def test_label_relaxation_hand_computed():
    """p̂(true) = .75 < 1 − α = .8: KL(p' ‖ p̂) with p' = (.2, .8)."""
    expected = 0.8 * math.log(0.8 / 0.75) + 0.2 * math.log(0.2 / 0.25)
    assert LabelRelaxationLoss(0.2)(Z, ROWS, COLS).item() == pytest.approx(expected, rel=1e-12)


def test_label_relaxation_is_zero_inside_credal_set():
    z = torch.tensor([[0.0, math.log(9.0)]], dtype=torch.float64, requires_grad=True)  # p̂(true) = .9 ≥ .8
    loss = LabelRelaxationLoss(0.2)(z, ROWS, COLS)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(z.grad == 0)


def dense(rows, cols, shape):
    y = torch.zeros(shape, dtype=torch.float64)
    y[rows, cols] = 1
    return y


def random_batch(seed, batch=6, entities=9, multi=False):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, entities, generator=gen, dtype=torch.float64) * 3
    if multi:  # KvsAll: 1–3 true tails per row
        rows, cols = [], []
        for b in range(batch):
            tails = torch.randperm(entities, generator=gen)[: 1 + b % 3]
            rows += [b] * len(tails)
            cols += tails.tolist()
        return scores, torch.tensor(rows), torch.tensor(cols)
    return scores, torch.arange(batch), torch.randint(entities, (batch,), generator=gen)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.2])
@pytest.mark.parametrize("multi", [False, True])
def test_bce_matches_dense_torch_bce(alpha, multi):
    scores, rows, cols = random_batch(1, multi=multi)
    y = dense(rows, cols, scores.shape)
    expected = F.binary_cross_entropy_with_logits(scores, (1 - alpha) * y + alpha / 2)
    assert BCELoss(alpha)(scores, rows, cols).item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.5])
@pytest.mark.parametrize("multi", [False, True])
def test_label_relaxation_matches_reference_value_and_gradient(alpha, multi):
    scores, rows, cols = random_batch(2, multi=multi)
    scores = scores * 0.3  # keep most rows outside the credal set
    a = scores.clone().requires_grad_(True)
    b = scores.clone().requires_grad_(True)
    ours = LabelRelaxationLoss(alpha)(a, rows, cols)
    reference = reference_label_relaxation(b, dense(rows, cols, scores.shape), alpha)
    ours.backward()
    reference.backward()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-10)
    assert torch.allclose(a.grad, b.grad, rtol=1e-9, atol=1e-12)
    assert ours.item() > 0


@pytest.mark.parametrize("alpha", [1e-6, 0.5, 1 - 1e-6])
@pytest.mark.parametrize("scale", [1e4, -1e4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_label_relaxation_is_finite_for_saturated_logits(alpha, scale, dtype):
    scores = torch.tensor([[scale, -scale, 0.0], [-scale, scale, scale]], dtype=dtype, requires_grad=True)
    loss = LabelRelaxationLoss(alpha)(scores, torch.tensor([0, 1]), torch.tensor([1, 0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_bce_is_finite_for_saturated_logits(scale):
    scores = torch.full((2, 3), scale, requires_grad=True)
    loss = BCELoss(0.1)(scores, torch.tensor([0, 1]), torch.tensor([1, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("calibration", ["ls", "lr"])
@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1.5, None])
def test_alpha_outside_open_unit_interval_is_rejected(calibration, alpha):
    with pytest.raises(ValueError, match=r"needs alpha in the open interval \(0, 1\)"):
        build_loss(calibration, alpha)


def test_build_loss():
    assert isinstance(build_loss("none"), BCELoss) and build_loss("none").smoothing == 0
    assert build_loss("ls", 0.1).smoothing == 0.1
    assert build_loss("lr", 0.2).alpha == 0.2
    with pytest.raises(ValueError, match="unknown calibration 'temperature'"):
        build_loss("temperature")


# --------------------------------------------------------------------------- the loss registry


def test_every_registered_loss_has_a_config_file_and_back():
    from kdkge.config import CONF_DIR
    from kdkge.losses import LOSS_CLASSES

    assert set(LOSS_CLASSES) == {"bce", "softmax_ce"}
    assert {p.stem for p in (CONF_DIR / "loss").glob("*.yaml")} == set(LOSS_CLASSES) | {"default"}
    for name in LOSS_CLASSES:
        assert f"name: {name}" in (CONF_DIR / "loss" / f"{name}.yaml").read_text()


def test_a_new_loss_is_one_registered_class():
    """What "Adding a loss" in the README shows: register a class, and a run can use it by name."""
    import torch.nn.functional as F

    from kdkge.experiment import RunSpec, run_one
    from kdkge.losses import LOSS_CLASSES, register

    @register
    class SquaredError:
        name = "test_squared_error"

        def __init__(self, smoothing: float = 0.0):
            self.smoothing = smoothing

        def __call__(self, scores, rows, cols):
            target = torch.zeros_like(scores)
            target[rows, cols] = 1.0 - self.smoothing
            return F.mse_loss(torch.sigmoid(scores), target)

    try:
        result = run_one(RunSpec(dataset="nations", model="distmult", dim=8, epochs=3, batch_size=256,
                                 protocol="paper_text", loss="test_squared_error", calibration="ls", alpha=0.1), progress=False)
        assert result.losses[-1] < result.losses[0]
    finally:
        LOSS_CLASSES.pop("test_squared_error")
