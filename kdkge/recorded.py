"""A recorded run, read back from its tracking store (local SQLite or a remote server).

* :func:`get_run` and :func:`download` fetch a run and one of its artifacts by run id (``eval.py``
  downloads ``checkpoint/model.pt`` this way, through the server's artifact proxy when the store
  is remote).
* :func:`resumed_config` is ``python train.py resume_run=<id>``: the config that run recorded (its
  ``config.yaml`` artifact, the fully resolved config) becomes the config of this launch; the
  other ``key=value`` overrides on the command line apply on top.  The result must hash to the
  run's ``config_hash`` tag (before those overrides), so a resume never silently trains something
  else; :func:`kdkge.app.train` then does what it does for any config — continue from the training
  state a KILLED/FAILED run left (``.cache/training-state/<config hash>.pt`` on this machine), or
  skip a FINISHED twin unless ``force=true``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict


class RecordedRunError(ValueError):
    """A run that cannot be read back (unknown id, missing artifact); the message is one line."""


def get_run(uri: str | None, run_id: str):
    """The MLflow run ``run_id`` of the store ``uri`` (default: :func:`kdkge.tracking.default_tracking_uri`)."""
    from mlflow.exceptions import MlflowException

    from .mlflow_store import check_reachable
    from .store import RunStore

    store = RunStore(uri)
    uri = store.uri
    check_reachable(uri)
    if not store.exists():
        raise RecordedRunError(f"no MLflow store at {uri}: set MLFLOW_TRACKING_URI (or tracking.uri=...) to the store of the run")
    try:
        return store.run(run_id)
    except MlflowException as exc:
        raise RecordedRunError(f"MLflow run {run_id!r} not found in {uri}: {str(exc).splitlines()[0]}") from None


def download(uri: str | None, run_id: str, artifact: str, folder: str | Path) -> Path:
    """Download the artifact ``artifact`` of run ``run_id`` into ``folder``; return the local path."""
    from mlflow.exceptions import MlflowException

    from .store import RunStore

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no progress bar for one small file
    try:
        return Path(RunStore(uri).download(run_id, artifact, folder))
    except (MlflowException, OSError) as exc:
        raise RecordedRunError(f"run {run_id} has no artifact {artifact} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


# --------------------------------------------------------------------------- #
# resume_run=<id>
# --------------------------------------------------------------------------- #


def _modernise(recorded: dict) -> dict:
    """Configs recorded before a key existed, in today's layout (what those runs meant).

    Runs recorded before protocols existed are ``protocol=paper_text`` with BCE, and their strategy
    group was called ``loss`` (``loss: {strategy: kvsall, num_negatives: ..., sparse: ...}``).
    """
    if "protocol" not in recorded:
        recorded["protocol"] = {"name": "paper_text"}
    loss = recorded.get("loss")
    if isinstance(loss, dict) and "strategy" in loss and "strategy" not in recorded:
        recorded["strategy"] = {"name": loss.pop("strategy"), "num_negatives": loss.pop("num_negatives", None),
                                "sparse": loss.pop("sparse", False)}
        recorded["loss"] = {"name": None}
    return recorded


def _known_part(recorded: dict, schema: DictConfig, path: str = "") -> tuple[dict, list[str]]:
    """``recorded`` without keys ``schema`` does not have (returned as the second element)."""
    known, dropped = {}, []
    for key, value in recorded.items():
        where = f"{path}{key}"
        if key not in schema:
            dropped.append(where)
        elif isinstance(value, dict) and OmegaConf.is_dict(schema[key]) and where != "model.options":
            known[key], more = _known_part(value, schema[key], where + ".")
            dropped += more
        else:
            known[key] = value
    return known, dropped


def resumed_config(cfg: DictConfig, overrides: Sequence[str] | None = None) -> tuple[DictConfig, dict[str, str]]:
    """The config of ``python train.py resume_run=<id> [key=value ...]``, and tags for the new run.

    ``cfg`` is the config composed from the command line (it names ``resume_run`` and the store:
    ``tracking.uri`` or ``$MLFLOW_TRACKING_URI``); ``overrides`` are the command line's overrides
    (default: Hydra's), of which every one but ``resume_run`` is applied on top of the recorded
    config — plain ``key=value`` only: a config group choice (``model=...``) is an error, because
    the recorded config already fixes every group.  Raises :class:`RecordedRunError` or
    :class:`kdkge.app.ConfigError` with a one-line message.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from .config import ConfigError
    from .identity import config_hash
    from .tracking import resolve_tracking_uri

    run_id = str(cfg.resume_run)
    uri = resolve_tracking_uri(cfg.tracking.uri or None)
    run = get_run(uri, run_id)
    with tempfile.TemporaryDirectory(prefix="kdkge-resume-") as tmp:
        recorded = OmegaConf.to_container(OmegaConf.load(download(uri, run_id, "config.yaml", tmp)))
    recorded, dropped = _known_part(_modernise(recorded), cfg)
    new = OmegaConf.merge(cfg, recorded)  # keeps the schema's types and the struct flag
    with open_dict(new):
        new.model.options = recorded.get("model", {}).get("options", {})
        new.stack = []
        new.resume_run = run_id
    digest, expected = config_hash(new), run.data.tags.get("config_hash")
    if expected and digest != expected:
        raise ConfigError(
            f"run {run_id}'s recorded config hashes to {digest[:12]} with this code, not to its config_hash {expected[:12]}: "
            f"the config changed since (keys dropped: {', '.join(dropped) or 'none'}); train it anew with its overrides: "
            f"python train.py {run.data.tags.get('overrides', '')}".rstrip())
    if overrides is None:
        overrides = _command_line_overrides()
    parsed = OverridesParser.create().parse_overrides([o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "resume_run"])
    groups = [o.input_line for o in parsed if o.key_or_group in _groups() or o.package is not None]
    if groups:
        raise ConfigError(f"resume_run takes key=value overrides only, not the config group choice {groups[0]}: "
                              "the run's recorded config fixes every group")
    ConfigLoaderImpl._apply_overrides_to_config([o for o in parsed if o.key_or_group != "tracking.uri"], new)
    with open_dict(new):
        new.tracking.uri = uri  # the new run goes to the store the recorded one came from
    tags = {"resume_of": run_id, "resume_of_status": run.info.status}
    print(f"resume_run {run_id}: {run.info.run_name} ({run.info.status}), its recorded config (hash {digest[:12]})"
          + (f" with {' '.join(o.input_line for o in parsed)}" if parsed else ""))
    return new, tags


def _command_line_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _groups() -> set[str]:
    from .config import CONF_DIR

    return {p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name != "hydra"} | {"sweep", "hydra"}
