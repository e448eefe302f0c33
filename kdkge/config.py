"""Typed schema of ``conf/train.yaml`` for Hydra (structured config).

The YAML files under ``conf/`` hold the values and document every key; the dataclasses here give
each key its type, so that ``epochs=abc`` or ``lr=fast`` fail when Hydra composes the config,
before any code runs.  Hydra also runs the composed config in struct mode: an override of a key
that does not exist (``epoch=5``, ``model.option.explicit=true``) is an error.

Values that have the right type but cannot run (a non-square ``dim`` for a Kronecker model,
``calibration.alpha`` outside (0, 1), ``device=cuda`` without a GPU, ...) are checked by
:func:`kdkge.app.validate` before training starts.

``dim`` is typed ``Any`` on purpose: a single run takes an integer (``dim=289``), and the sweep
layer expands the word ``dim=range`` under ``-m``; without ``-m`` the app answers
"dim=range is a sweep: add -m" instead of a type error.

Importing this module registers the schema as ``train_schema`` (used by ``conf/train.yaml``'s
defaults list); ``train.py``, :mod:`kdkge.app` and the tests import it before composing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from .paths import CONF_DIR  # noqa: F401  (``conf/``, what ``train.py`` passes to ``@hydra.main``)


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
    resume_run: Optional[str] = None  # MLflow run id whose recorded config to train again (kdkge.resume)
    sweep_id: Optional[str] = None  # id shared by the runs of one sweep (set by the sweeper under -m)
    stack: List[List[str]] = field(default_factory=list)  # set by the sweeper: member overrides of a stacked job
    parent_run: Optional[str] = None  # set by the sweeper: MLflow run id of the sweep's parent run


def register_configs() -> None:
    """Register the schema as ``train_schema`` and the ``kdkge-sweeps://`` config source (idempotent).

    The config source makes ``sweeps/*.yaml`` the config group ``sweep`` (``+sweep=table4``); it is
    named in ``hydra.searchpath`` of ``conf/train.yaml`` (see :mod:`kdkge.sweeps`).
    """
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)
    from .sweeps import register_source

    register_source()


register_configs()
