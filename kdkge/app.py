"""The application layer: a composed Hydra config → one tracked training run.

:func:`train` is pure with respect to Hydra — it takes a ``DictConfig`` (from ``train.py``'s
``@hydra.main``, from ``hydra.compose`` in tests or an Optuna driver) and returns the run's
metrics under the names of :mod:`kdkge.schema`.  It

1. checks the config (:func:`validate`) and fails before training with a one-line
   :class:`ConfigError` if a value cannot run;
2. skips the run if MLflow already holds a FINISHED run with the same :func:`config_hash`
   (unless ``force=true``) and returns that run's metrics;
3. trains with :func:`kdkge.experiment.run`, recording in MLflow: the flattened config as
   params and ``config.yaml`` as artifact, the tags of :data:`kdkge.schema.RUN_TAGS` plus
   ``version.*``, the per-epoch ``loss`` (buffered, written in batches), all rank metrics every
   ``eval_every`` epochs and at the end, ``num_parameters``, ``wall_time_s``, ``epochs_per_s``,
   the learning-curve plot and the checkpoint;
4. prints the results table and where the run is in MLflow.

A run that raises or is interrupted is ended FAILED / KILLED with the error (tag ``error``,
traceback in the artifact ``error.txt``); the process can start the next run.

:func:`main` is what ``train.py`` calls: ``train`` plus the command-line error handling.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import inspect
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from . import claims
from . import config as _config  # noqa: F401  (registers the schema with Hydra's ConfigStore)
from .data import BUILTIN, SPLITS, UNSEEN_POLICIES, DataError, resolve_dataset_path
from .calibration_metrics import calibration_metrics, reliability_diagram
from .experiment import PROTOCOL_LOSS, PROTOCOLS, STRATEGIES, RunSpec, evaluation_tasks, run, save_checkpoint
from .losses import CALIBRATIONS
from .models import MODELS, available_models, build_model
from .safe_load import UnsafeFileError, load_plain
from .schema import RANK_METRICS, flat_metrics, with_grouped
from .tracking import REPO_ROOT, MlflowTracker, NullTracker, Tracker, TrackingError, TrackingUnreachableError
from .tracking import config_hash as _hash_params
from .training import NonFiniteLoss, resolve_device

log = logging.getLogger(__name__)

#: Config keys that do not change a run's result; :func:`config_hash` leaves them out, so a run
#: is recognised as done whatever device, thread count, data location or logging it used.
#: ``eval_every`` only adds intermediate evaluations (eval mode, no randomness): same results.
#: The sweep layer may extend this tuple (e.g. with its sweep id key).
NON_SEMANTIC_KEYS: tuple[str, ...] = (
    "dataset.path",
    "device",
    "threads",
    "eval_every",
    "checkpoint",
    "checkpoint_every",
    "resume",
    "select_best",
    "force",
    "progress",
    "tracking",
    "sweep_id",
    "stack",
    "parent_run",
    "resume_run",
)

#: Package versions recorded as ``version.<name>`` tags.
VERSIONED_PACKAGES = ("kdkge", "torch", "numpy", "hydra-core", "omegaconf", "mlflow", "optuna")


class ConfigError(ValueError):
    """A config value that cannot run; the message is one line naming the key and a fix."""


#: ``threads`` above this multiple of the machine's CPUs is refused (torch crashes on absurd values).
MAX_THREADS_PER_CPU = 4


def _cpu_count() -> int:
    return os.cpu_count() or 1


# --------------------------------------------------------------------------- #
# Config → run description
# --------------------------------------------------------------------------- #


def dataset_name(cfg: DictConfig) -> str:
    """``dataset.name``, or (``null``, as for ``dataset=custom``) the dataset folder's name."""
    name = cfg.dataset.name
    if name:
        return str(name)
    if OmegaConf.is_missing(cfg.dataset, "path") or not cfg.dataset.path:
        raise ConfigError("dataset=custom needs dataset.path=<folder holding train.txt, valid.txt, test.txt>")
    return Path(str(cfg.dataset.path)).expanduser().resolve().name


def dataset_location(cfg: DictConfig) -> str:
    """What :func:`kdkge.data.load_dataset` gets: the absolute folder, or a built-in name."""
    if OmegaConf.is_missing(cfg.dataset, "path"):
        raise ConfigError("dataset=custom needs dataset.path=<folder holding train.txt, valid.txt, test.txt>")
    if cfg.dataset.path:
        from hydra.utils import to_absolute_path  # relative to the launch directory

        return to_absolute_path(str(Path(str(cfg.dataset.path)).expanduser()))
    name = cfg.dataset.name
    if name not in BUILTIN:
        raise ConfigError(
            f"dataset.name={name!r} is not built in ({', '.join(BUILTIN)}): set dataset.path=<folder>"
        )
    return str(name)


def _check_dim(dim: Any) -> int:
    if isinstance(dim, str) and dim.strip().lower() == "range":
        raise ConfigError("dim=range is a sweep: add -m (python train.py -m ... dim=range)")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ConfigError(f"dim={dim!r} must be a positive integer embedding size (e.g. dim=289)")
    return dim


def run_spec(cfg: DictConfig) -> RunSpec:
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


def _check_model_options(name: str, options: Mapping[str, Any]) -> None:
    accepted = [
        p for p in inspect.signature(MODELS[name].__init__).parameters
        if p not in ("self", "num_entities", "num_relations", "dim", "stack")
    ]
    for key in options:
        if key not in accepted:
            hint = f"its options are {', '.join(accepted)}" if accepted else "it takes none"
            raise ConfigError(f"model {name} has no option model.options.{key}: {hint}")


def validate(cfg: DictConfig) -> tuple[RunSpec, int]:
    """Check everything that can be checked before training; return the spec and the stored width.

    Raises :class:`ConfigError` (or :class:`~kdkge.data.DataError`) with a one-line message.
    """
    spec = run_spec(cfg)
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
    if cfg.threads is not None and cfg.threads < 1:
        raise ConfigError(f"threads={cfg.threads} must be a positive integer (or null for torch's default)")
    if cfg.threads is not None and cfg.threads > MAX_THREADS_PER_CPU * _cpu_count():
        raise ConfigError(f"threads={cfg.threads} is more than {MAX_THREADS_PER_CPU}× the {_cpu_count()} CPUs of this machine: "
                          f"use at most threads={_cpu_count()} (or threads=null for torch's default)")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every={cfg.checkpoint_every} must be >= 0 (training state every N epochs; 0 = never)")
    if cfg.tracking.enabled:
        from .tracking import check_uri_scheme

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
    _check_model_options(spec.model, spec.model_options)
    try:
        spec.validate()  # dim (squares for KD models), epochs, batch_size, lr, noise, calibration α, strategy
    except DataError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        with torch.device("meta"):  # shapes only: 2 entities, 2 relations, nothing allocated (dim may be huge)
            tiny = build_model(spec.model, 2, 2, spec.dim, **spec.model_options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model {spec.model} with {spec.model_options}: {exc}") from None
    try:
        resolve_device(str(cfg.device))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    folder = resolve_dataset_path(spec.dataset)
    for split in SPLITS:
        if not (folder / f"{split}.txt").is_file():
            raise DataError(f"missing split file {folder / f'{split}.txt'}: a dataset folder needs train.txt, valid.txt and test.txt")
    if spec.protocol == "paper_code" and not _has_a_triple(folder / "valid.txt"):
        raise ConfigError(f"protocol=paper_code needs a valid split ({folder / 'valid.txt'} is empty): the authors' test split "
                          "takes its reciprocal tails from it; add validation triples or use protocol=paper_text")
    return spec, tiny.stored_width


def _has_a_triple(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return any(line.strip() for line in handle)


# --------------------------------------------------------------------------- #
# Hash, names, tags
# --------------------------------------------------------------------------- #


def dataset_identity(cfg: DictConfig) -> tuple[str, str, bool]:
    """``(source folder, fingerprint, custom)`` of the config's dataset.

    ``fingerprint`` is :func:`kdkge.fingerprint.dataset_fingerprint` of the split files.  ``custom``
    is True for a folder given by ``dataset.path`` whose files are not those of the built-in dataset
    of the same name (a folder ``umls`` holding other triples is custom); only custom datasets put
    their fingerprint into the config hash, so built-in runs keep the hashes they were recorded with.
    """
    from .fingerprint import dataset_fingerprint

    location = dataset_location(cfg)
    folder = resolve_dataset_path(location)
    for split in SPLITS:
        if not (folder / f"{split}.txt").is_file():
            raise DataError(f"missing split file {folder / f'{split}.txt'}: a dataset folder needs train.txt, valid.txt and test.txt")
    fingerprint = dataset_fingerprint(folder)
    if not cfg.dataset.path:
        return str(folder), fingerprint, False
    name = dataset_name(cfg)
    builtin = name in BUILTIN and dataset_fingerprint(resolve_dataset_path(name)) == fingerprint
    return str(folder), fingerprint, not builtin


def semantic_config(cfg: DictConfig) -> dict:
    """The resolved config without :data:`NON_SEMANTIC_KEYS`; ``dataset.name`` filled in, and
    ``dataset.fingerprint`` (SHA-256 of the split files) for a custom dataset (:func:`dataset_identity`)."""
    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    data.setdefault("dataset", {})["name"] = dataset_name(cfg)
    if cfg.dataset.path:  # built-in datasets (path null) keep their recorded hashes
        _, fingerprint, custom = dataset_identity(cfg)
        if custom:
            data["dataset"]["fingerprint"] = fingerprint
    for dotted in NON_SEMANTIC_KEYS:
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    # Early stopping changes results, and then so does the evaluation interval; at its neutral
    # default (0) the key is left out, so that runs recorded before it existed keep their hash.
    if data.get("patience", 0) == 0:
        data.pop("patience", None)
    else:
        data["eval_every"] = cfg.eval_every
    # float32 (the default) is what every run recorded before the key existed used.
    if data.get("dtype", "float32") == "float32":
        data.pop("dtype", None)
    # Protocol, loss and strategy.  Negative-sampling keys exist only for strategy=negsamp.  Runs of
    # paper_text with its BCE — every run recorded before protocols existed — hash in the layout of
    # that time, {"loss": {"strategy": ...}}, so they keep their hashes; all others name protocol and loss.
    protocol = (data.pop("protocol", None) or {}).get("name", "paper_text")
    loss = (data.pop("loss", None) or {}).get("name") or PROTOCOL_LOSS.get(protocol, "bce")
    strategy = data.pop("strategy", None) or {}
    training = {"strategy": strategy.get("name", "1vsall")}
    if training["strategy"] == "negsamp":
        training.update(num_negatives=strategy.get("num_negatives"), sparse=strategy.get("sparse", False))
    if protocol == "paper_text" and loss == "bce":
        data["loss"] = training
    else:
        data.update(protocol=protocol, loss={"name": loss, **training})
    return data


def config_hash(cfg: DictConfig) -> str:
    """SHA-256 (hex) identifying what a run computes.

    Defined as :func:`kdkge.tracking.config_hash` (SHA-256 of the JSON of the flattened,
    key-sorted config, values as strings) of :func:`semantic_config`: the resolved config minus
    :data:`NON_SEMANTIC_KEYS` (dataset path, device, threads, eval_every, checkpoint, force,
    progress, tracking.*, sweep_id), with ``dataset.name`` set to the effective name (the folder's
    name for ``dataset=custom``) and, for a custom dataset, ``dataset.fingerprint``: the SHA-256 of
    its split files (the data, not the path, identifies the run).  Consequences: ``calibration=ls_0.1`` and
    ``calibration=ls calibration.alpha=0.1`` hash equal; ``lr=0.01`` and ``lr=1e-2`` hash equal;
    the same run on cpu and cuda hashes equal.
    """
    return _hash_params(semantic_config(cfg))


def default_run_name(cfg: DictConfig) -> str:
    """``<model>-<dataset>-d<dim>`` + ``-kvsall`` + ``-<ls|lr><α>`` + ``-noise<r>`` + ``-s<seed>`` (non-defaults only)."""
    parts = [str(cfg.model.name), dataset_name(cfg), f"d{cfg.dim}"]
    if cfg.strategy.name == "negsamp":
        parts.append(f"negsamp{cfg.strategy.num_negatives}" + ("-sparse" if cfg.strategy.sparse else ""))
    elif cfg.strategy.name != "1vsall":
        parts.append(str(cfg.strategy.name))
    protocol = str(cfg.protocol.name)
    if protocol != "paper_code":
        parts.append(protocol.replace("paper_", ""))  # -text
    if cfg.loss.name and cfg.loss.name != PROTOCOL_LOSS.get(protocol):
        parts.append(str(cfg.loss.name))
    if cfg.calibration.name != "none":
        parts.append(f"{cfg.calibration.name}{cfg.calibration.alpha:g}")
    if cfg.noise_ratio:
        parts.append(f"noise{cfg.noise_ratio:g}")
    if cfg.seed != 1:
        parts.append(f"s{cfg.seed}")
    if cfg.get("dtype", "float32") != "float32":
        parts.append(str(cfg.dtype))
    return "-".join(parts)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hydra_overrides() -> str:
    """The Hydra override string of the running job (``overrides.task``), or '' outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return " ".join(HydraConfig.get().overrides.task)
    except Exception:  # pragma: no cover - hydra internals
        pass
    return ""


def run_tags(cfg: DictConfig, spec: RunSpec, stored_dim: int, digest: str, overrides: str) -> dict[str, str]:
    """Tags of :data:`kdkge.schema.RUN_TAGS` plus ``version.*``, ``git_dirty`` and ``device``."""
    commit = _git("rev-parse", "HEAD")
    source, fingerprint, _ = dataset_identity(cfg)
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    tags = {
        "model": spec.model,
        "dataset": dataset_name(cfg),
        "calibration": spec.calibration,
        "alpha": "" if spec.alpha is None else str(spec.alpha),
        "noise_ratio": str(spec.noise_ratio),
        "dim": str(spec.dim),
        "stored_dim": str(stored_dim),
        "seed": str(spec.seed),
        "strategy": spec.strategy,
        "protocol": spec.protocol,
        "loss": spec.loss,
        "epochs": str(spec.epochs),
        "config_hash": digest,
        "sweep_id": str(OmegaConf.select(cfg, "sweep_id", default="") or ""),
        "git_commit": commit or "unknown",
        "git_dirty": "unknown" if dirty is None else str(bool(dirty)).lower(),
        "overrides": overrides,
        "device": str(resolve_device(str(cfg.device))),
        "dataset_source": source,
        "dataset_fingerprint": fingerprint,
        "host": platform.node(),
        "pid": str(os.getpid()),
    }
    parent = OmegaConf.select(cfg, "parent_run", default=None)
    if parent:  # a job of a sweep: nested under the sweep's parent run (kdkge.parent_runs)
        tags["mlflow.parentRunId"] = str(parent)
    tags.update({f"version.{name}": v for name, v in package_versions().items()})
    return tags


# --------------------------------------------------------------------------- #
# Tracking helpers
# --------------------------------------------------------------------------- #


def make_tracker(cfg: DictConfig) -> Tracker:
    """:class:`MlflowTracker` on ``tracking.uri`` (or the default store), or :class:`NullTracker`."""
    if not cfg.tracking.enabled:
        return NullTracker()
    experiment = cfg.tracking.experiment or f"kdkge-{dataset_name(cfg)}"
    return MlflowTracker(cfg.tracking.uri or None, experiment=str(experiment))


def ui_hint(tracker: Tracker, run_id: str) -> list[str]:
    """Lines saying where a run is: tracking URI, experiment, run id and the UI address."""
    if not isinstance(tracker, MlflowTracker):
        return ["MLflow: not recorded (tracking=none)"]
    path = f"/#/experiments/{tracker.experiment_id}/runs/{run_id}"
    uri = tracker.tracking_uri
    lines = [
        f"MLflow run {run_id} in experiment {tracker.experiment_name!r} (id {tracker.experiment_id})",
        f"  tracking URI: {uri}",
    ]
    if uri.startswith(("http://", "https://")):
        lines.append(f"  open: {uri.rstrip('/')}{path}")
    elif uri == f"sqlite:///{REPO_ROOT / 'mlflow.db'}":
        lines.append(f"  browse: make ui, then open http://127.0.0.1:5000{path}")
    else:
        lines.append(f"  browse: mlflow ui --backend-store-uri {uri}, then open http://127.0.0.1:5000{path}")
    return lines


def results_table(metrics: Mapping[str, float], num_parameters: int | None = None) -> str:
    """Train/valid/test MRR and Hits@1/3/10 as a text table (from flat metric names)."""
    header = f"{'split':<6} {'MRR':>7} {'Hits@1':>7} {'Hits@3':>7} {'Hits@10':>7}"
    lines = [header, "-" * len(header)]
    for split in ("train", "valid", "test", "paper_test"):
        if f"{split}_mrr" not in metrics:
            continue
        values = [metrics.get(f"{split}_{m}", math.nan) for m in RANK_METRICS]
        label = "test 2022 (the authors' split and ranking)" if split == "paper_test" else split
        lines.append(f"{split if split != 'paper_test' else 'test22':<6} " + " ".join(f"{v:>7.3f}" for v in values)
                     + ("   ← " + label if split == "paper_test" else ""))
    if num_parameters is not None:
        lines.append(f"parameters: {int(num_parameters):,}")
    return "\n".join(lines)


def learning_curve(losses: list[tuple[int, float]], valid_mrr: list[tuple[int, float]], title: str):
    """Figure of the training loss per epoch and the validation MRR per evaluation."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot()
    if losses:
        if all(v > 0 for _, v in losses):
            ax.set_yscale("log")  # BCE losses fall by orders of magnitude
        ax.plot([e for e, _ in losses], [v for _, v in losses], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    twin = ax.twinx()
    if valid_mrr:
        twin.plot([e for e, _ in valid_mrr], [v for _, v in valid_mrr], "o-", color="tab:orange", label="valid MRR")
    twin.set_ylabel("valid MRR (filtered)", color="tab:orange")
    ax.set_title(title)
    fig.tight_layout()
    return fig


class _MetricLog:
    """Buffers per-epoch losses and writes them in batches; collects curves and timings."""

    def __init__(self, tracker: Tracker, flush_every: int, epochs: int):
        self.tracker, self.flush_every, self.epochs = tracker, flush_every, epochs
        self.pending: list[tuple[int, dict[str, float], int]] = []
        self.losses: list[tuple[int, float]] = []
        self.valid_mrr: list[tuple[int, float]] = []
        self.started = time.perf_counter()
        self.first_epoch_end: float | None = None
        self.last_epoch_end: float | None = None
        self.eval_seconds = 0.0  # time spent in intermediate evaluations (not training)
        self.epochs_done = 0

    def on_epoch(self, epoch: int, losses: list[float]) -> None:
        self.losses.append((epoch, losses[0]))
        self.pending.append((epoch, with_grouped({"loss": losses[0]}), int(time.time() * 1000)))
        if len(self.pending) >= self.flush_every:
            self.flush()
        self.epochs_done = epoch
        self.last_epoch_end = time.perf_counter()
        if self.first_epoch_end is None:
            self.first_epoch_end = self.last_epoch_end
        _raise_if_signalled()  # a SIGTERM/SIGINT whose KeyboardInterrupt was swallowed: stop after this epoch

    def on_eval(self, epoch: int, metrics: list[dict[str, dict[str, float]]]) -> None:
        flat = flat_metrics(metrics[0])
        if "valid_mrr" in flat:
            self.valid_mrr.append((epoch, flat["valid_mrr"]))
        self.flush()
        self.tracker.log_metrics(with_grouped(flat), step=epoch)
        if epoch < self.epochs and self.last_epoch_end is not None:
            # an intermediate evaluation runs between this epoch's end and the next epoch's start
            self.eval_seconds += time.perf_counter() - self.last_epoch_end

    def flush(self) -> None:
        if self.pending:
            rows, self.pending = self.pending, []
            self.tracker.log_metric_steps(rows)

    def epochs_per_s(self) -> float | None:
        """Training speed from the end of the first to the end of the last epoch, evaluations excluded.

        (With a single epoch: that epoch including the setup of data and model.)
        """
        if self.first_epoch_end is None:
            return None
        if self.epochs_done <= 1:
            return self.epochs_done / max(self.first_epoch_end - self.started, 1e-9)
        seconds = self.last_epoch_end - self.first_epoch_end - self.eval_seconds
        return (self.epochs_done - 1) / max(seconds, 1e-9)


def _log_dataset(tracker: Tracker, cfg: DictConfig, spec: RunSpec) -> None:
    """The dataset as the run's MLflow dataset input (:mod:`kdkge.run_inputs`)."""
    if isinstance(tracker, MlflowTracker):
        from .run_inputs import log_dataset

        log_dataset(tracker, dataset_name(cfg), resolve_dataset_path(spec.dataset), protocol=spec.protocol,
                    noise_ratio=spec.noise_ratio, seed=spec.seed)


def _finished_metrics(tracker: Tracker, run_id: str) -> dict[str, float]:
    if isinstance(tracker, MlflowTracker):
        return dict(tracker.client.get_run(run_id).data.metrics)
    return {}


# --------------------------------------------------------------------------- #
# The run
# --------------------------------------------------------------------------- #


def train(cfg: DictConfig, *, overrides: str | None = None, tracker: Tracker | None = None,
          tags: Mapping[str, str] | None = None,
          on_eval: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, float]:
    """Train, evaluate and record one run of the composed config ``cfg``; return its metrics.

    The result maps :mod:`kdkge.schema` metric names (``test_mrr``, ``valid_hits_10``, ...,
    ``num_parameters``, ``wall_time_s``, ``epochs_per_s``) to values.  ``overrides`` is the
    override string for the ``overrides`` tag (default: Hydra's, when Hydra runs); ``tracker``
    replaces the one built from ``cfg.tracking`` (tests, drivers); ``tags`` are added to the
    run's tags (e.g. an Optuna study name); ``on_eval(epoch, flat_metrics)`` is called after every
    evaluation (every ``eval_every`` epochs and at the end) — an exception it raises (e.g.
    ``optuna.TrialPruned``) ends the run as FAILED with that error.

    Order: :func:`validate` (nothing is recorded for a value that cannot run); take the claim of
    (store, config hash) (:mod:`kdkge.claims`; held by another process: skip, returning
    ``{CLAIMED_ELSEWHERE: 1.0}``); skip a FINISHED run; check that training states can be written;
    start the MLflow run; :func:`kdkge.experiment.run` loads the data and checks negatives and memory
    (:func:`kdkge.experiment.check_resources`) before it builds the model — such an error ends the
    MLflow run FAILED with the message (tag ``error``), as a malformed data file does.
    """
    spec, stored_dim = validate(cfg)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    digest = config_hash(cfg)
    tracker = tracker if tracker is not None else make_tracker(cfg)
    name = cfg.tracking.run_name or default_run_name(cfg)
    with claims.claimed(store_key(tracker), digest) if isinstance(tracker, MlflowTracker) else contextlib.nullcontext() as claim:
        if claim is not None and not claim.held:
            print(f"skip {name}: another process is training config hash {digest[:12]} for this store: {claim.describe_holder()}")
            return {CLAIMED_ELSEWHERE: 1.0}
        return _train_claimed(cfg, spec, stored_dim, digest, tracker, name, overrides, tags, on_eval)


#: Key of the metrics :func:`train` returns for a run it skipped because another process holds its claim.
CLAIMED_ELSEWHERE = "claimed_elsewhere"


def job_value(metrics: Mapping[str, float] | None) -> float | None:
    """What a Hydra job returns for a run: its test MRR; NaN if another process trains it; None if it failed."""
    if not metrics:
        return None
    if metrics.get(CLAIMED_ELSEWHERE):
        return math.nan
    return metrics.get("test_mrr")


def store_key(tracker: Tracker) -> str:
    """Where a tracker records: ``<tracking URI>#<experiment>`` (claims and training states are per store)."""
    if isinstance(tracker, MlflowTracker):
        return f"{tracker.tracking_uri}#{tracker.experiment_name}"
    return "untracked"


def check_state_dir(folder: Path) -> None:
    """Fail before training if training states cannot be written to ``folder`` (one line, with the fixes)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(
            f"training states cannot be written to {folder} ({exc.strerror or exc}): make the folder writable, point "
            "KDKGE_STATE_DIR at a writable folder, or set checkpoint_every=0 to train without resumable training states"
        ) from None


def _train_claimed(cfg, spec, stored_dim, digest, tracker, name, overrides, tags, on_eval) -> dict[str, float]:
    if not cfg.force:  # checked while holding the claim: a run finished by another process is seen here
        done = tracker.finished_run_with_hash(digest) if hasattr(tracker, "finished_run_with_hash") else None
        if done:
            metrics = _finished_metrics(tracker, done)
            print(f"skip {name}: MLflow already holds FINISHED run {done} with config hash {digest[:12]} (force=true re-runs)")
            if metrics:
                print(results_table(metrics, metrics.get("num_parameters")))
            print("\n".join(ui_hint(tracker, done)))
            return metrics

    if cfg.checkpoint_every:
        check_state_dir(training_state_dir())
    if hasattr(tracker, "close_orphans"):
        for orphan in tracker.close_orphans(digest):
            print(f"marked run {orphan} KILLED: its process died before it ended (config hash {digest[:12]})")
    state_path = training_state_path(digest, store_key(tracker)) if cfg.checkpoint_every else None
    resumed_from = _resumable_epoch(state_path) if cfg.resume else None
    if state_path is not None and not cfg.resume:
        state_path.unlink(missing_ok=True)
    tags = {**run_tags(cfg, spec, stored_dim, digest, hydra_overrides() if overrides is None else overrides), **(tags or {})}
    if resumed_from:
        tags["resumed_from_epoch"] = str(resumed_from)
        print(f"resume {name}: continuing from the training state of epoch {resumed_from} ({state_path})")
    params = OmegaConf.to_container(cfg, resolve=True)
    with tracker.run(name, tags=tags, params=params) as run_id, tempfile.TemporaryDirectory(prefix="kdkge-") as tmp:
        tmp = Path(tmp)
        config_file = tmp / "config.yaml"
        config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        tracker.log_artifact(config_file)
        _log_dataset(tracker, cfg, spec)
        log_ = _MetricLog(tracker, int(cfg.tracking.log_every), spec.epochs)

        def eval_hook(epoch: int, metrics: list[dict[str, dict[str, float]]]) -> None:
            log_.on_eval(epoch, metrics)
            if on_eval is not None:
                on_eval(epoch, flat_metrics(metrics[0]))

        try:
            started = time.perf_counter()
            [result] = run(
                [spec],
                device=str(cfg.device),
                eval_every=int(cfg.eval_every),
                select_best=bool(cfg.select_best) and cfg.eval_every > 0,
                patience=int(cfg.patience),
                progress=bool(cfg.progress),
                on_epoch=log_.on_epoch,
                on_eval=eval_hook,
                checkpoint=state_path,
                checkpoint_every=int(cfg.checkpoint_every),
                resume=bool(cfg.resume),
            )
            wall = time.perf_counter() - started
            metrics = _record_result(cfg, name, tracker, log_, tmp, result, wall)
        except BaseException as exc:
            _record_failure(tracker, log_, tmp, exc)
            raise

    if state_path is not None:
        state_path.unlink(missing_ok=True)  # finished: the run is in MLflow, the training state is no longer needed
    print(f"\n{name}: {spec.model} on {dataset_name(cfg)}, d={spec.dim}, {spec.epochs} epoch{'' if spec.epochs == 1 else 's'}, "
          f"{wall:.1f} s" + (f" ({metrics['epochs_per_s']:.2f} epochs/s)" if "epochs_per_s" in metrics else ""))
    print(results_table(metrics, result.num_parameters))
    print("\n".join(ui_hint(tracker, run_id)))
    return metrics


CALIBRATION_SPLITS = ("valid", "test")


def _record_result(cfg: DictConfig, name: str, tracker: Tracker, log_: "_MetricLog", tmp: Path, result, wall: float) -> dict[str, float]:
    """Log a trained run's final numbers and artifacts; return its metrics.

    Besides the rank metrics: ``num_parameters``, ``wall_time_s``, ``epochs_per_s``, the
    calibration of σ(score) on valid and test (``{split}_ece``, ``{split}_brier``,
    ``{split}_top1_ece``, see :mod:`kdkge.calibration_metrics`), the learning curve, a reliability
    diagram per split, and the checkpoint.
    """
    log_.flush()
    metrics = flat_metrics(result.metrics)
    metrics["num_parameters"] = float(result.num_parameters)
    metrics["wall_time_s"] = wall
    speed = log_.epochs_per_s()
    if speed is not None:
        metrics["epochs_per_s"] = speed
    tasks = evaluation_tasks(result.kg, CALIBRATION_SPLITS)
    for split, task in tasks.items():
        [calibration] = calibration_metrics(result.model, task, bins=15)
        for key in ("ece", "brier", "top1_ece"):
            metrics[f"{split}_{key}"] = calibration[key]
        _log_and_close(tracker, reliability_diagram(calibration["reliability"], f"{name}: {split}"), f"plots/reliability_{split}.png")
    tracker.log_metrics(
        {k: v for k, v in metrics.items() if k in ("num_parameters", "wall_time_s", "epochs_per_s") or k.endswith(("_ece", "_brier"))},
        step=result.spec.epochs,
    )
    metrics["last_epoch"] = float(result.last_epoch)
    if result.best_metrics is not None:  # model selection: the paper's final-epoch numbers stay the main ones
        metrics["best_epoch"] = float(result.best_epoch)
        metrics.update({f"best_{key}": value for key, value in flat_metrics(result.best_metrics).items()})
    tracker.log_metrics({k: v for k, v in metrics.items() if k.startswith("best_") or k == "last_epoch"}, step=result.last_epoch)
    fig = learning_curve(log_.losses, log_.valid_mrr, f"{name} (test MRR {metrics['test_mrr']:.3f})")
    _log_and_close(tracker, fig, "plots/learning_curve.png")
    if cfg.checkpoint and not isinstance(tracker, NullTracker):
        tracker.log_artifact(save_checkpoint(result, tmp / "model.pt"), "checkpoint")
        if result.best_model is not None:
            tracker.log_artifact(save_checkpoint(result.best_model, tmp / "best_model.pt", result.spec, result.kg), "checkpoint")
    return metrics


def _log_and_close(tracker: Tracker, fig, filename: str) -> None:
    """Log a figure and free it: a long sweep would otherwise keep every figure alive."""
    import matplotlib.pyplot as plt

    try:
        tracker.log_figure(fig, filename)
    finally:
        plt.close(fig)


TRAINING_STATE_DIR = REPO_ROOT / ".cache" / "training-state"


def training_state_dir() -> Path:
    """``$KDKGE_STATE_DIR``, else ``<repo>/.cache/training-state`` (gitignored)."""
    return Path(os.environ.get("KDKGE_STATE_DIR") or TRAINING_STATE_DIR)


def training_state_path(digest: str, store: str = "untracked") -> Path:
    """Where a run of this config hash for this store (:func:`store_key`) keeps its resumable training state.

    ``<config hash>-<12 hex digits of the store>.pt``: two stores never share (or delete) one
    state.  A state of the layout before stores were part of the name (``<config hash>.pt``) is
    adopted by the next run of that hash.
    """
    folder = training_state_dir()
    path = folder / f"{digest}-{hashlib.sha256(store.encode()).hexdigest()[:12]}.pt"
    legacy = folder / f"{digest}.pt"
    if not path.exists() and legacy.is_file():
        with contextlib.suppress(OSError):
            legacy.replace(path)
    return path


def _resumable_epoch(path: Path | None) -> int | None:
    """The epoch a training state was saved at, or None.  Loaded with ``weights_only=True``: a file
    whose pickle would run code is refused (:class:`~kdkge.safe_load.UnsafeFileError`, kept for
    inspection), an unreadable one is dropped with a warning."""
    if path is None or not path.is_file():
        return None
    try:
        return int(load_plain(path, "training state")["epoch"])
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{exc} (or set resume=false, which deletes it)") from None
    except Exception as exc:  # a truncated file cannot happen (atomic writes), but never crash on it
        log.warning("ignoring unreadable training state %s: %s", path, exc)
        path.unlink(missing_ok=True)
        return None


def _record_failure(tracker: Tracker, log_: _MetricLog, tmp: Path, exc: BaseException) -> None:
    """Best effort: write the buffered losses and the traceback before the run is ended FAILED/KILLED."""
    try:
        log_.flush()
        error_file = tmp / "error.txt"
        error_file.write_text("".join(traceback.format_exception(exc)))
        tracker.log_artifact(error_file)
    except Exception as inner:  # never hide the original error
        log.warning("could not record the failure in MLflow: %s", inner)


# --------------------------------------------------------------------------- #
# Stacked runs: several configurations, one batched model, one MLflow run each
# --------------------------------------------------------------------------- #

#: Settings that must agree within a stacked group besides :meth:`RunSpec.stack_key` (they
#: belong to the shared training loop or to the shared store).
STACK_SHARED_KEYS = ("device", "eval_every", "progress", "threads", "checkpoint", "tracking.log_every")


def train_group(cfgs: Sequence[DictConfig], *, overrides: Sequence[str] | None = None,
                trackers: Sequence[Tracker] | None = None) -> list[dict[str, float]]:
    """Train several configurations as one stacked model; record each as its own MLflow run.

    The configurations must share :meth:`kdkge.experiment.RunSpec.stack_key` (they may differ in
    calibration, α and — on clean data — seed) and :data:`STACK_SHARED_KEYS`.  Each keeps
    everything :func:`train` gives a run: its own params, tags (its own ``config_hash``,
    ``overrides``), per-epoch loss, rank metrics, plot and checkpoint, plus the tags
    ``stack_size`` and ``stack_id``; ``wall_time_s`` and ``epochs_per_s`` are the group's.
    Results are identical to training each configuration alone with :func:`train`.
    A configuration with a FINISHED run of the same config hash is skipped (unless
    ``force=true``), and so is one whose claim another process holds (:mod:`kdkge.claims`; its
    metrics are then ``{CLAIMED_ELSEWHERE: 1.0}``); the rest are stacked; with one left it is
    simply :func:`train`.
    Returns each configuration's metrics in the order given.  An error fails every run of the
    group (FAILED, or KILLED on Ctrl-C) and is raised.
    """
    cfgs = list(cfgs)
    n = len(cfgs)
    overrides = list(overrides) if overrides is not None else [hydra_overrides()] * n
    trackers = list(trackers) if trackers is not None else [make_tracker(c) for c in cfgs]
    if not (len(overrides) == len(trackers) == n):
        raise ValueError("train_group: cfgs, overrides and trackers must have the same length")
    if n == 1 or any(c.patience for c in cfgs):  # early stopping: one configuration at a time
        return [train(c, overrides=o, tracker=t) for c, o, t in zip(cfgs, overrides, trackers)]
    checked = [validate(c) for c in cfgs]
    specs = [spec for spec, _ in checked]
    if len({s.stack_key() for s in specs}) != 1:
        raise ConfigError("train_group: the configurations differ in more than calibration, alpha and (clean data) seed")
    for key in STACK_SHARED_KEYS:
        if len({str(OmegaConf.select(c, key)) for c in cfgs}) != 1:
            raise ConfigError(f"train_group: the configurations must agree on {key}")
    digests = [config_hash(c) for c in cfgs]
    names = [c.tracking.run_name or default_run_name(c) for c in cfgs]
    results: list[dict[str, float] | None] = [None] * n
    if len(set(digests)) < n:
        twice = next(names[i] for i in range(n) if digests[i] in digests[:i])
        raise ConfigError(f"train_group: {twice} is listed twice (same config hash)")
    todo = []
    with contextlib.ExitStack() as held:  # the claims of the configurations this process trains
        for i, cfg in enumerate(cfgs):
            if isinstance(trackers[i], MlflowTracker):
                claim = held.enter_context(claims.claimed(store_key(trackers[i]), digests[i]))
                if not claim.held:
                    print(f"skip {names[i]}: another process is training config hash {digests[i][:12]} for this store: "
                          f"{claim.describe_holder()}")
                    results[i] = {CLAIMED_ELSEWHERE: 1.0}
                    continue
            done = None if cfg.force else getattr(trackers[i], "finished_run_with_hash", lambda _: None)(digests[i])
            if done:
                results[i] = _finished_metrics(trackers[i], done)
                print(f"skip {names[i]}: MLflow already holds FINISHED run {done} with config hash {digests[i][:12]} (force=true re-runs)")
            else:
                todo.append(i)
        if len(todo) > 1:
            for i, metrics in zip(todo, _train_stacked([cfgs[i] for i in todo], [specs[i] for i in todo],
                                                       [checked[i][1] for i in todo], [digests[i] for i in todo],
                                                       [names[i] for i in todo], [overrides[i] for i in todo],
                                                       [trackers[i] for i in todo])):
                results[i] = metrics
    if len(todo) == 1:  # claims released: train() takes its own
        i = todo[0]
        results[i] = train(cfgs[i], overrides=overrides[i], tracker=trackers[i])
    return results  # type: ignore[return-value]


def _train_stacked(cfgs, specs, stored_dims, digests, names, overrides, trackers) -> list[dict[str, float]]:
    import contextlib

    first = cfgs[0]
    if first.threads:
        torch.set_num_threads(int(first.threads))
    k = len(cfgs)
    stack_id = _hash_params({"members": sorted(digests)})[:12]
    with contextlib.ExitStack() as stack:
        run_ids, logs, tmps = [], [], []
        for cfg, spec, stored, digest, name, ovr, tracker in zip(cfgs, specs, stored_dims, digests, names, overrides, trackers):
            tags = {**run_tags(cfg, spec, stored, digest, ovr), "stack_size": str(k), "stack_id": stack_id}
            run_ids.append(stack.enter_context(tracker.run(name, tags=tags, params=OmegaConf.to_container(cfg, resolve=True))))
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kdkge-")))
            tmps.append(tmp)
            (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
            tracker.log_artifact(tmp / "config.yaml")
            _log_dataset(tracker, cfg, spec)
            logs.append(_MetricLog(tracker, int(cfg.tracking.log_every), spec.epochs))
        try:
            started = time.perf_counter()
            outcome = run(
                list(specs),
                device=str(first.device),
                eval_every=int(first.eval_every),
                select_best=bool(first.select_best) and first.eval_every > 0,
                progress=bool(first.progress),
                on_epoch=lambda epoch, losses: [lg.on_epoch(epoch, [losses[j]]) for j, lg in enumerate(logs)],
                on_eval=lambda epoch, metrics: [lg.on_eval(epoch, [metrics[j]]) for j, lg in enumerate(logs)],
            )
            wall = time.perf_counter() - started
            all_metrics = []
            for cfg, name, tracker, lg, tmp, result in zip(cfgs, names, trackers, logs, tmps, outcome):
                all_metrics.append(_record_result(cfg, name, tracker, lg, tmp, result, wall))
        except BaseException as exc:
            for tracker, lg, tmp in zip(trackers, logs, tmps):
                _record_failure(tracker, lg, tmp, exc)
            raise

    spec = specs[0]
    print(f"\nstacked {k} runs: {spec.model} on {dataset_name(first)}, d={spec.dim}, {spec.epochs} epoch"
          f"{'' if spec.epochs == 1 else 's'}, {wall:.1f} s for all")
    for name, tracker, run_id, metrics, result in zip(names, trackers, run_ids, all_metrics, outcome):
        print(f"\n{name}:")
        print(results_table(metrics, result.num_parameters))
        print("\n".join(ui_hint(tracker, run_id)))
    return all_metrics


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #

#: Errors reported as one line (``error: ...``, exit status 2) instead of a traceback.
USER_ERRORS = (ValueError, TrackingError, NonFiniteLoss)


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # pragma: no cover
        return False


def _chosen_sweep() -> str | None:
    """The sweep file chosen with ``+sweep=<name>`` (None outside Hydra or without one)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return HydraConfig.get().runtime.choices.get("sweep")
    except Exception:  # pragma: no cover
        pass
    return None


def _one_line_hydra(exc: BaseException) -> str:
    """Hydra's config error and its OmegaConf cause as one line, naming the key (``full_key``)."""
    lines, key = [], None
    for part in (exc, exc.__cause__):
        if part is None:
            continue
        for line in str(part).splitlines():
            line = line.strip()
            if line.startswith("full_key:"):
                key = line.split(":", 1)[1].strip() or key
            elif line and not line.startswith(("object_type=", "reference_type=")):
                lines.append(line.removeprefix("error: ").rstrip("."))
    text = "; ".join(dict.fromkeys(lines)) or type(exc).__name__
    return text + (f" (key: {key})" if key and f"'{key}'" not in text else "")


def one_line_hydra_errors() -> None:
    """Make Hydra's own errors about the command line (a key that does not exist, a value of the
    wrong type such as ``seed=1e20``, an unknown group option) one line, ``error: ...`` with exit
    status 1, instead of Hydra's multi-line report.  ``HYDRA_FULL_ERROR=1`` keeps Hydra's behaviour.

    Hydra has no hook for this: ``hydra._internal.utils.run_and_report`` (hydra-core 1.3.8, pinned)
    is wrapped so that :class:`hydra.errors.CompactHydraException` never reaches it.
    """
    import hydra._internal.utils as hydra_utils
    from hydra.errors import CompactHydraException

    original = hydra_utils.run_and_report
    if getattr(original, "kdkge_one_line", False):
        return

    def run_and_report(func):
        def guarded():
            try:
                return func()
            except CompactHydraException as exc:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"error: {_one_line_hydra(exc)}", file=sys.stderr)
                sys.exit(1)

        return original(guarded)

    run_and_report.kdkge_one_line = True
    hydra_utils.run_and_report = run_and_report


def _check_writable_folder(target: Path, key: str) -> None:
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file")
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".kdkge-probe-"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"error: Hydra's output folder {target} cannot be created ({reason}: {existing}): make it writable, "
              f"or choose another folder with {key}=<writable folder>", file=sys.stderr)
        sys.exit(2)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover
    _HydraCallback = object


class OutputDirCheck(_HydraCallback):
    """Hydra callback (``conf/train.yaml``: ``hydra.callbacks``): before Hydra creates its output
    folder (``outputs/<date>/<time>``, or ``multirun/...`` under ``-m``), check that it can be
    written, so a read-only folder is one line ``error: ...`` (exit 2) instead of a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_writable_folder(Path(str(config.hydra.run.dir)).expanduser().absolute(), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_writable_folder(Path(str(config.hydra.sweep.dir)).expanduser().absolute(), "hydra.sweep.dir")


#: Signals received (SIGTERM, SIGINT) whose KeyboardInterrupt has not reached :func:`main` yet.
_SIGNALLED: list[int] = []


def _raise_if_signalled() -> None:
    """Raise the KeyboardInterrupt of a signal whose first one was swallowed.

    A signal handler's exception that happens to be raised inside a garbage-collection or weakref
    callback (SQLAlchemy registers some) is printed as "Exception ignored" and lost, and training
    would go on for hours.  The handler also records the signal; the end of every epoch
    (:class:`_MetricLog`) calls this, so a run stops within one epoch whatever happened.
    """
    if _SIGNALLED:
        raise KeyboardInterrupt(f"terminated by signal {_SIGNALLED[-1]}")


def _terminate_like_ctrl_c() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the run is ended KILLED (and its losses kept)
    instead of staying RUNNING; SLURM sends SIGTERM before it kills a job at its time limit."""
    import signal
    import threading

    def interrupt(signum, frame):
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    def ctrl_c(signum, frame):
        _SIGNALLED.append(signum)
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)
        # A process started in the background by a non-interactive shell inherits SIGINT as
        # ignored, and Python then never raises KeyboardInterrupt: make `kill -INT` work anyway.
        signal.signal(signal.SIGINT, ctrl_c)


def main(cfg: DictConfig) -> float | list[float | None] | None:
    """``train.py``'s task: :func:`train`, returning the test MRR (for sweepers).

    A :data:`USER_ERRORS` error prints ``error: <message>`` and exits with status 2 (no traceback);
    under ``-m`` it is logged and the sweep goes on (the job returns None; the MLflow run, if
    it started, is FAILED).  Ctrl-C exits with status 130 (the run is KILLED).
    A job whose ``stack`` lists several configurations (set by the kdkge sweeper) trains them
    with :func:`train_group` and returns their test MRRs as a list.
    SIGTERM (``kill``, a batch scheduler's time limit) is handled like Ctrl-C.
    """
    _terminate_like_ctrl_c()
    try:
        if cfg.get("stack"):  # a job of the kdkge sweeper that trains several configurations stacked
            from .sweeps import run_stacked_job

            return run_stacked_job(cfg)
        sweep = _chosen_sweep()
        if sweep and not _multirun():
            raise ConfigError(f"+sweep={sweep} is a sweep: add -m (python train.py -m +sweep={sweep})")
        if cfg.get("resume_run"):  # python train.py resume_run=<id>: that run's recorded config (kdkge.recorded)
            from .recorded import resumed_config

            cfg, tags = resumed_config(cfg)
            metrics = train(cfg, tags=tags)
        else:
            metrics = train(cfg)
    except USER_ERRORS as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _multirun():
            log.error("error: %s", message)
            return None
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        _SIGNALLED.clear()
        print("interrupted: the MLflow run (if started) is marked KILLED", file=sys.stderr)
        sys.exit(130)
    return job_value(metrics)
