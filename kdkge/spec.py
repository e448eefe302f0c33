"""What defines a run (:class:`RunSpec`, with its one validation) and what a run returns (:class:`RunResult`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

from .data import KnowledgeGraph
from .losses import LOSS_CLASSES, build_loss
from .models import available_models, check_builds
from .strategies import STRATEGY_CLASSES, available_strategies, build_strategy

SPLIT_NAMES = ("train", "valid", "test")
#: The registered training strategies (:mod:`kdkge.strategies`): 1vsall, kvsall, negsamp and any added one.
STRATEGIES = available_strategies()
#: Floating-point types a run can train in (``RunSpec.dtype``).  Initial weights are drawn in
#: float32 whatever the dtype, so a float64 run starts from the float32 run's weights.
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: ``paper_code``: what the authors' code ran (softmax cross-entropy, their 2022 splits, noise and
#: evaluation; conf/protocol/paper_code.yaml lists every difference).  ``paper_text``: the paper's
#: text read literally (per-entity BCE of Eq. 2, clean splits) — every run recorded before
#: protocols existed.
PROTOCOLS = ("paper_code", "paper_text")
#: The loss each protocol trains with unless ``loss`` is set.
PROTOCOL_LOSS = {"paper_code": "softmax_ce", "paper_text": "bce"}
#: Largest seed: ``np.random.RandomState`` (the authors' noise, :mod:`kdkge.data_2022`) takes 32-bit seeds.
MAX_SEED = 2**32 - 1
#: What a run description saved before a field existed meant (training states, checkpoints).
LEGACY_SPEC = {"protocol": "paper_text", "loss": "bce", "dtype": "float32"}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run's result (defaults: the paper's Sec. 5.1 protocol)."""

    dataset: str = "umls"  # built-in name or folder path
    model: str = "distmult"  # a registered model name
    dim: int = 289  # embedding size d (KD models store √d-wide vectors)
    strategy: str = "1vsall"  # training labels: 1vsall | kvsall | negsamp (negative sampling)
    calibration: str = "none"  # none | ls (label smoothing) | lr (label relaxation)
    alpha: float | None = None  # α of ls / lr, in (0, 1)
    noise_ratio: float = 0.0  # Sec. 6.3: add noise_ratio·|train| random false triples
    epochs: int = 1000
    batch_size: int = 1024
    lr: float = 0.01
    seed: int = 1
    unseen: str = "skip"  # valid/test triples with entities/relations unseen in train: skip | error
    model_options: dict = field(default_factory=dict)  # extra model arguments, e.g. explicit=True
    num_negatives: int = 32  # negsamp: uniformly drawn negative tails per data point (k)
    sparse: bool = False  # negsamp: sparse embedding gradients + lazy Adam (kdkge.training.SparseAdam)
    dtype: str = "float32"  # float32 (the paper's) | float64 (exact comparisons of code paths; tests)
    protocol: str = "paper_code"  # paper_code (what the authors' code ran) | paper_text (the text of Eq. 2)
    loss: str | None = None  # bce | softmax_ce; None = the protocol's (PROTOCOL_LOSS)

    def __post_init__(self):
        if self.loss is None and self.protocol in PROTOCOL_LOSS:
            object.__setattr__(self, "loss", PROTOCOL_LOSS[self.protocol])

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for a setting that cannot run."""
        if self.model not in available_models():
            raise ValueError(f"unknown model {self.model!r}: available models are {', '.join(available_models())}")
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim <= 0:
            raise ValueError(f"dim={self.dim!r} must be a positive integer embedding size")
        try:
            check_builds(self.model, self.dim, **self.model_options)  # e.g. Kronecker models need a square d
        except TypeError as exc:
            raise ValueError(f"model {self.model} does not take the options {self.model_options}: {exc}") from None
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0 and not (name == "epochs" and value == 0):
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr={self.lr!r} must be positive and finite (the Adam learning rate, e.g. lr=0.01)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed={self.seed!r} must be an integer in [0, {MAX_SEED}] (numpy's RandomState, which draws "
                             "protocol=paper_code's noise, takes 32-bit seeds)")
        if not 0.0 <= self.noise_ratio < 1.0:
            raise ValueError(f"noise_ratio={self.noise_ratio!r} must lie in [0, 1)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol={self.protocol!r} is unknown: use one of {', '.join(PROTOCOLS)}")
        if self.loss not in LOSS_CLASSES:
            raise ValueError(f"loss={self.loss!r} is unknown: use one of {', '.join(sorted(LOSS_CLASSES))}")
        if self.protocol == "paper_code" and self.strategy != "1vsall":
            raise ValueError(f"protocol=paper_code trains 1vsAll only (the authors' training_1vsall), not strategy={self.strategy}: "
                             "use strategy=1vsall, or protocol=paper_text")
        strategy = STRATEGY_CLASSES.get(self.strategy)
        if getattr(LOSS_CLASSES[self.loss], "one_tail_per_row", False) and strategy is not None and not strategy.one_tail_per_point:
            one_tail = " or ".join(name for name, cls in STRATEGY_CLASSES.items() if cls.one_tail_per_point)
            raise ValueError(f"loss={self.loss} needs one true tail per data point: use strategy={one_tail}, or loss=bce")
        build_loss(self.calibration, self.alpha, self.loss, self.protocol)  # checks calibration and alpha
        if strategy is None:
            build_strategy(self)  # the one-line error naming the strategies
        strategy.check(self)  # e.g. negsamp: num_negatives; the others: no sparse gradients
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not supported: use one of {', '.join(DTYPES)}")

    def stack_key(self) -> tuple:
        """Runs with equal keys share data, model shape and batches, so they can be stacked.

        Only calibration, α and — on clean data — the seed may differ (noise depends on the seed).
        """
        fields = dataclasses.asdict(self)
        fields.pop("calibration"), fields.pop("alpha")
        if self.noise_ratio == 0:
            fields.pop("seed")
        fields["model_options"] = tuple(sorted(self.model_options.items()))
        return tuple(sorted(fields.items()))


@dataclass
class RunResult:
    spec: RunSpec
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    num_parameters: int
    losses: list[float]  # mean training loss per epoch
    model: torch.nn.Module  # the trained (unstacked) model, in eval mode
    kg: KnowledgeGraph
    seconds: float  # wall time of the stacked group this run belonged to
    last_epoch: int = 0  # the last trained epoch (< spec.epochs after early stopping)
    best_epoch: int | None = None  # epoch of the best validation MRR (model selection), if tracked
    best_metrics: dict[str, dict[str, float]] | None = None  # metrics of the best-validation model
    best_model: torch.nn.Module | None = None  # the best-validation model, if tracked
