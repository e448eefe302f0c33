"""What identifies a run: its config hash, its name, its tags, and which runs may be stacked.

* :func:`config_hash` — SHA-256 of what a run computes (:func:`semantic_config`); the key of
  skip-finished, claims and training states.  ``tests/test_config_hash.py`` pins the hashes of
  recorded runs: they must never change.
* :func:`default_run_name` — ``<model>-<dataset>-d<dim>`` plus the non-default settings.
* :func:`run_tags` — the tags of :data:`kdkge.schema.RUN_TAGS` plus provenance
  (:mod:`kdkge.provenance`).
* :func:`stack_key` — the one definition of "which runs may be trained as one stacked model": the
  sweep planner groups runs by it, and :func:`kdkge.app.train_group` refuses a group whose members
  differ in it (:func:`stack_conflict`).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from .config import ConfigError, dataset_folder, dataset_location, dataset_name
from .data import BUILTIN, resolve_dataset_path
from .experiment import PROTOCOL_LOSS, RunSpec
from .provenance import git, package_versions
from .tracking import config_hash as _hash_params
from .training import resolve_device

#: Config keys that do not change a run's result; :func:`config_hash` leaves them out, so a run
#: is recognised as done whatever device, thread count, data location or logging it used.
#: ``eval_every`` only adds intermediate evaluations (eval mode, no randomness): same results.
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


# --------------------------------------------------------------------------- #
# The config hash
# --------------------------------------------------------------------------- #


def dataset_identity(cfg: DictConfig) -> tuple[str, str, bool]:
    """``(source folder, fingerprint, custom)`` of the config's dataset.

    ``fingerprint`` is :func:`kdkge.fingerprint.dataset_fingerprint` of the split files.  ``custom``
    is True for a folder given by ``dataset.path`` whose files are not those of the built-in dataset
    of the same name (a folder ``umls`` holding other triples is custom); only custom datasets put
    their fingerprint into the config hash, so built-in runs keep the hashes they were recorded with.
    """
    from .fingerprint import dataset_fingerprint

    folder = dataset_folder(dataset_location(cfg))
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
    _legacy_training_layout(data)
    return data


def _legacy_training_layout(data: dict) -> None:
    """Protocol, loss and strategy, in place.  Negative-sampling keys exist only for strategy=negsamp.

    Runs of paper_text with its BCE — every run recorded before protocols existed — hash in the
    layout of that time, ``{"loss": {"strategy": ...}}``, so they keep their hashes; all others
    name protocol and loss.
    """
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


# --------------------------------------------------------------------------- #
# Names and tags
# --------------------------------------------------------------------------- #


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


def run_name(cfg: DictConfig) -> str:
    """``tracking.run_name``, else :func:`default_run_name`."""
    return cfg.tracking.run_name or default_run_name(cfg)


def run_tags(cfg: DictConfig, spec: RunSpec, stored_dim: int, digest: str, overrides: str) -> dict[str, str]:
    """Tags of :data:`kdkge.schema.RUN_TAGS` plus ``version.*``, ``git_dirty`` and ``device``."""
    commit = git("rev-parse", "HEAD")
    source, fingerprint, _ = dataset_identity(cfg)
    dirty = git("status", "--porcelain", "--untracked-files=no")
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
# Which runs may be stacked
# --------------------------------------------------------------------------- #

#: Settings the members of a stacked group must agree on besides
#: :meth:`RunSpec.stack_key <kdkge.experiment.RunSpec.stack_key>` (which lets only calibration,
#: α and — on clean data — the seed differ): those of the one shared training loop (device,
#: evaluations, progress bar, threads, checkpoint), of the one launched job (tracking, force).
STACK_SHARED_KEYS = ("device", "eval_every", "progress", "threads", "checkpoint", "tracking.enabled",
                     "tracking.uri", "tracking.experiment", "tracking.log_every", "force")


def stack_key(cfg: DictConfig, spec: RunSpec) -> tuple:
    """Runs with equal keys may be trained as one stacked model (one job of a sweep)."""
    return spec.stack_key(), tuple(str(OmegaConf.select(cfg, key)) for key in STACK_SHARED_KEYS)


def stack_conflict(cfgs: Sequence[DictConfig], specs: Sequence[RunSpec]) -> None:
    """Raise :class:`~kdkge.config.ConfigError` if the configurations do not share one :func:`stack_key`."""
    if len({s.stack_key() for s in specs}) != 1:
        raise ConfigError("train_group: the configurations differ in more than calibration, alpha and (clean data) seed")
    for key in STACK_SHARED_KEYS:
        if len({str(OmegaConf.select(c, key)) for c in cfgs}) != 1:
            raise ConfigError(f"train_group: the configurations must agree on {key}")
