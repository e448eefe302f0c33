"""Where a run came from: the code's commit, the package versions, the Hydra overrides.

Recorded with every run as tags (:func:`kdkge.identity.run_tags`): ``git_commit``, ``git_dirty``,
``version.<package>``, ``overrides``.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess

from .paths import REPO_ROOT

#: Package versions recorded as ``version.<name>`` tags.
VERSIONED_PACKAGES = ("kdkge", "torch", "numpy", "hydra-core", "omegaconf", "mlflow", "optuna")


def git(*args: str) -> str | None:
    """``git -C <repo> <args>``'s output, or None without git or outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def package_versions() -> dict[str, str]:
    """Python's and :data:`VERSIONED_PACKAGES`' versions (``not installed`` for a missing one)."""
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
