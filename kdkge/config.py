"""The run configuration: its typed schema, the :class:`~kdkge.experiment.RunSpec` it describes, and
the one check of a composed config before anything runs.

**Schema.**  The YAML files under ``conf/`` hold the values and document every key; the dataclasses
here give each key its type, so that ``epochs=abc`` or ``lr=fast`` fail when Hydra composes the
config, before any code runs.  Hydra also runs the composed config in struct mode: an override of a
key that does not exist (``epoch=5``, ``model.option.explicit=true``) is an error.  Importing this
module registers the schema as ``train_schema`` (used by ``conf/train.yaml``'s defaults list).

**Spec.**  :func:`to_spec` turns a composed config into the Hydra-free
:class:`~kdkge.experiment.RunSpec` (the Python API's description of a run).

**Validation.**  :func:`validate` is the one place where a composed config is checked: values
that have the right type but cannot run (a non-square ``dim`` for a Kronecker model,
``calibration.alpha`` outside (0, 1), ``strategy.sparse`` without negative sampling,
``device=cuda`` without a GPU, a dataset folder without its split files, ...) raise
:class:`ConfigError` with one line naming the key and a fix.  It checks the config's own keys
and then calls :meth:`RunSpec.validate <kdkge.experiment.RunSpec.validate>` for the values of the
spec (the Python API's check), turning its ``ValueError`` into a :class:`ConfigError`.

``dim`` is typed ``Any`` on purpose: a single run takes an integer (``dim=289``), and the sweep
layer expands the word ``dim=range`` under ``-m``; without ``-m`` :func:`validate` answers
"dim=range is a sweep: add -m" instead of a type error.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .data import BUILTIN, SPLITS, UNSEEN_POLICIES, DataError, resolve_dataset_path
from .experiment import PROTOCOLS, STRATEGIES, RunSpec
from .losses import CALIBRATIONS
from .models import MODELS, available_models, check_builds
from .paths import CONF_DIR
from .tracking import TrackingError, check_uri_scheme
from .training import resolve_device

__all__ = ["CONF_DIR", "TrainConfig", "ConfigError", "dataset_name", "dataset_location", "dataset_folder", "to_spec",
           "run_spec", "validate", "register_configs"]  # CONF_DIR: ``conf/``, where ``train.py``'s ``@hydra.main`` looks


@dataclass
class ModelConfig:
    name: str = MISSING  # registered model name (kdkge.models.available_models())
    options: Dict[str, Any] = field(default_factory=dict)  # extra constructor arguments of the model


@dataclass
class DatasetConfig:
    name: Optional[str] = None  # dataset name; null (custom) = the folder's name
    path: Optional[str] = MISSING  # dataset folder; null = data/<name> (built-in datasets); ??? = required
    unseen: str = "skip"  # valid/test triples with entities/relations unseen in train: skip | error


@dataclass
class ProtocolConfig:
    name: str = "paper_code"  # paper_code (the authors' code at ca983cc) | paper_text (the paper's text)


@dataclass
class StrategyConfig:
    name: str = "1vsall"  # 1vsall | kvsall | negsamp
    num_negatives: Optional[int] = None  # negsamp only: negative tails drawn per data point (k); null otherwise
    sparse: bool = False  # negsamp only: sparse embedding gradients + lazy Adam (large graphs)


@dataclass
class LossConfig:
    name: Optional[str] = None  # bce | softmax_ce; null = the protocol's (softmax_ce / bce)


@dataclass
class CalibrationConfig:
    name: str = "none"  # none | ls | lr
    alpha: Optional[float] = None  # α of ls/lr in (0, 1); null for none


@dataclass
class TrackingConfig:
    enabled: bool = True  # false = record nothing
    uri: Optional[str] = None  # null = $MLFLOW_TRACKING_URI or sqlite:///<repo>/mlflow.db
    experiment: Optional[str] = None  # null = kdkge-<dataset name>
    run_name: Optional[str] = None  # null = a readable name from model, dataset, dim, calibration, seed
    log_every: int = 100  # flush buffered per-epoch losses every N epochs


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    dim: Any = MISSING  # embedding size d (an integer; set by the model group)
    noise_ratio: float = 0.0
    seed: int = 1
    epochs: int = 1000
    batch_size: int = 1024
    lr: float = 0.01
    dtype: str = "float32"  # float32 | float64 (in the config hash only when not float32)
    device: str = "auto"
    threads: Optional[int] = None
    eval_every: int = 100
    select_best: bool = True  # also keep and report the best-validation-MRR model (model selection)
    patience: int = 0  # early stopping after this many evaluations without a better valid MRR (0 = off)
    checkpoint: bool = True
    checkpoint_every: int = 50  # training-state checkpoint every N epochs (0 = none)
    resume: bool = True  # continue a killed run of the same config hash from its training state
    force: bool = False
    progress: bool = True
    resume_run: Optional[str] = None  # MLflow run id whose recorded config to train again (kdkge.recorded)
    sweep_id: Optional[str] = None  # id shared by the runs of one sweep (set by the sweeper under -m)
    stack: List[List[str]] = field(default_factory=list)  # set by the sweeper: member overrides of a stacked job
    parent_run: Optional[str] = None  # set by the sweeper: MLflow run id of the sweep's parent run


def register_configs() -> None:
    """Register the schema as ``train_schema`` in Hydra's ConfigStore (idempotent).

    The sweep files (``sweeps/*.yaml``, the config group ``sweep``) come from the config source of
    the sweeper plugin, which Hydra discovers by itself (``hydra_plugins/kdkge_sweeper``).
    """
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


register_configs()


# --------------------------------------------------------------------------- #
# Config → RunSpec
# --------------------------------------------------------------------------- #


class ConfigError(ValueError):
    """A config value that cannot run; the message is one line naming the key and a fix."""


#: ``threads`` above this multiple of the machine's CPUs is refused (torch crashes on absurd values).
MAX_THREADS_PER_CPU = 4

_CUSTOM_NEEDS_PATH = "dataset=custom needs dataset.path=<folder holding train.txt, valid.txt, test.txt>"


def _cpu_count() -> int:
    return os.cpu_count() or 1


def dataset_name(cfg: DictConfig) -> str:
    """``dataset.name``, or (``null``, as for ``dataset=custom``) the dataset folder's name."""
    name = cfg.dataset.name
    if name:
        return str(name)
    if OmegaConf.is_missing(cfg.dataset, "path") or not cfg.dataset.path:
        raise ConfigError(_CUSTOM_NEEDS_PATH)
    return Path(str(cfg.dataset.path)).expanduser().resolve().name


def dataset_location(cfg: DictConfig) -> str:
    """What :func:`kdkge.data.load_dataset` gets: the absolute folder, or a built-in name."""
    if OmegaConf.is_missing(cfg.dataset, "path"):
        raise ConfigError(_CUSTOM_NEEDS_PATH)
    if cfg.dataset.path:
        from hydra.utils import to_absolute_path  # relative to the launch directory

        return to_absolute_path(str(Path(str(cfg.dataset.path)).expanduser()))
    name = cfg.dataset.name
    if name not in BUILTIN:
        raise ConfigError(
            f"dataset.name={name!r} is not built in ({', '.join(BUILTIN)}): set dataset.path=<folder>"
        )
    return str(name)


def dataset_folder(location: str) -> Path:
    """The folder of a dataset location; :class:`~kdkge.data.DataError` if a split file is missing."""
    folder = resolve_dataset_path(location)
    for split in SPLITS:
        if not (folder / f"{split}.txt").is_file():
            raise DataError(f"missing split file {folder / f'{split}.txt'}: a dataset folder needs train.txt, valid.txt and test.txt")
    return folder


def _check_dim(dim: Any) -> int:
    if isinstance(dim, str) and dim.strip().lower() == "range":
        raise ConfigError("dim=range is a sweep: add -m (python train.py -m ... dim=range)")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ConfigError(f"dim={dim!r} must be a positive integer embedding size (e.g. dim=289)")
    return dim


def to_spec(cfg: DictConfig) -> RunSpec:
    """The :class:`~kdkge.experiment.RunSpec` of a composed config (not yet validated)."""
    return RunSpec(
        dataset=dataset_location(cfg),
        model=str(cfg.model.name),
        dim=_check_dim(cfg.dim),
        strategy=str(cfg.strategy.name),
        calibration=str(cfg.calibration.name),
        alpha=None if cfg.calibration.alpha is None else float(cfg.calibration.alpha),
        noise_ratio=float(cfg.noise_ratio),
        epochs=int(cfg.epochs),
        batch_size=int(cfg.batch_size),
        lr=float(cfg.lr),
        seed=int(cfg.seed),
        unseen=str(cfg.dataset.unseen),
        model_options=OmegaConf.to_container(cfg.model.options, resolve=True),
        num_negatives=RunSpec.num_negatives if cfg.strategy.num_negatives is None else int(cfg.strategy.num_negatives),
        sparse=bool(cfg.strategy.sparse),
        dtype=str(cfg.dtype),
        protocol=str(cfg.protocol.name),
        loss=None if cfg.loss.name is None else str(cfg.loss.name),
    )


#: The former name of :func:`to_spec`.
run_spec = to_spec


# --------------------------------------------------------------------------- #
# The one check of a composed config
# --------------------------------------------------------------------------- #


def validate(cfg: DictConfig) -> tuple[RunSpec, int]:
    """Check everything that can be checked before training; return the spec and the stored width.

    Raises :class:`ConfigError` (or :class:`~kdkge.data.DataError`) with a one-line message.
    """
    spec = to_spec(cfg)
    _check_choices(cfg, spec)
    _check_settings(cfg)
    _check_model_options(spec.model, spec.model_options)
    try:
        spec.validate()  # dim (squares for KD models), epochs, batch_size, lr, noise, calibration α, strategy, sparse
    except DataError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        stored_width = check_builds(spec.model, spec.dim, **spec.model_options)  # shapes only (dim may be huge)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {spec.model} with {spec.model_options}: {exc}") from None
    try:
        resolve_device(str(cfg.device))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    folder = dataset_folder(spec.dataset)
    if spec.protocol == "paper_code" and not _has_a_triple(folder / "valid.txt"):
        raise ConfigError(f"protocol=paper_code needs a valid split ({folder / 'valid.txt'} is empty): the authors' test split "
                          "takes its reciprocal tails from it; add validation triples or use protocol=paper_text")
    return spec, stored_width


def _check_choices(cfg: DictConfig, spec: RunSpec) -> None:
    """The config groups' choices, named by their Hydra keys (before the spec's own check)."""
    if spec.model not in available_models():
        raise ConfigError(f"unknown model {spec.model!r}: available models are {', '.join(available_models())}")
    if spec.calibration == "none" and spec.alpha is not None:
        raise ConfigError(
            f"calibration.alpha={spec.alpha} has no effect with calibration=none: "
            "drop it, or choose calibration=ls or calibration=lr"
        )
    if spec.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol.name={spec.protocol!r} is unknown: use protocol=paper_code or protocol=paper_text")
    if spec.strategy not in STRATEGIES:
        raise ConfigError(f"strategy.name={spec.strategy!r} is unknown: use strategy=1vsall, strategy=kvsall or strategy=negsamp")
    # The rule "strategy.sparse and strategy.num_negatives need strategy=negsamp", for a config.
    if spec.strategy != "negsamp" and (cfg.strategy.num_negatives is not None or cfg.strategy.sparse):
        key = "strategy.num_negatives" if cfg.strategy.num_negatives is not None else "strategy.sparse"
        raise ConfigError(f"{key} applies to negative sampling only: add strategy=negsamp (or drop {key})")
    if spec.strategy == "negsamp" and spec.num_negatives < 1:
        raise ConfigError(f"strategy.num_negatives={spec.num_negatives} must be a positive integer (negatives per data point)")
    if spec.calibration not in CALIBRATIONS:
        raise ConfigError(f"calibration.name={spec.calibration!r} is unknown: use one of {', '.join(CALIBRATIONS)}")
    if spec.epochs < 0:
        raise ConfigError(f"epochs={spec.epochs} must be a non-negative integer")
    if spec.seed < 0:
        raise ConfigError(f"seed={spec.seed} must be a non-negative integer")
    if spec.unseen not in UNSEEN_POLICIES:
        raise ConfigError(f"dataset.unseen={spec.unseen!r} is not a policy: use one of {', '.join(UNSEEN_POLICIES)}")


def _check_settings(cfg: DictConfig) -> None:
    """The keys that are not part of the spec: threads, checkpoints, tracking, evaluations, patience."""
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads={cfg.threads} must be a positive integer (or null for torch's default)")
    if cfg.threads is not None and cfg.threads > MAX_THREADS_PER_CPU * _cpu_count():
        raise ConfigError(f"threads={cfg.threads} is more than {MAX_THREADS_PER_CPU}× the {_cpu_count()} CPUs of this machine: "
                          f"use at most threads={_cpu_count()} (or threads=null for torch's default)")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every={cfg.checkpoint_every} must be >= 0 (training state every N epochs; 0 = never)")
    if cfg.tracking.enabled:
        try:
            check_uri_scheme(cfg.tracking.uri or None, key="tracking.uri" if cfg.tracking.uri else "MLFLOW_TRACKING_URI")
        except TrackingError as exc:
            raise ConfigError(str(exc)) from None
    if cfg.eval_every < 0:
        raise ConfigError(f"eval_every={cfg.eval_every} must be >= 0 (0 = evaluate only at the end)")
    if cfg.patience < 0:
        raise ConfigError(f"patience={cfg.patience} must be >= 0 (0 = no early stopping)")
    if cfg.patience and not cfg.eval_every:
        raise ConfigError(f"patience={cfg.patience} needs evaluations: set eval_every to a positive number of epochs")
    if cfg.tracking.log_every < 1:
        raise ConfigError(f"tracking.log_every={cfg.tracking.log_every} must be a positive integer")


def _check_model_options(name: str, options: Mapping[str, Any]) -> None:
    accepted = [
        p for p in inspect.signature(MODELS[name].__init__).parameters
        if p not in ("self", "num_entities", "num_relations", "dim", "stack")
    ]
    for key in options:
        if key not in accepted:
            hint = f"its options are {', '.join(accepted)}" if accepted else "it takes none"
            raise ConfigError(f"model {name} has no option model.options.{key}: {hint}")


def _has_a_triple(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return any(line.strip() for line in handle)
