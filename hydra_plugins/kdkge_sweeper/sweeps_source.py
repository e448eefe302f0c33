"""The config source ``kdkge-sweeps://<folder>``: the sweep files ``sweeps/*.yaml`` as the config group ``sweep``.

Hydra discovers both plugins of this module by itself (it scans the ``hydra_plugins`` package for
plugins, config sources included): :class:`SweepsConfigSource` serves the files, and
:class:`SweepsSearchPath` puts ``kdkge-sweeps://sweeps`` on the search path of kdkge's apps, so
``python train.py -m +sweep=table4`` works from any working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from hydra.core.object_type import ObjectType
from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import OmegaConf

from kdkge.paths import CONF_DIR, REPO_ROOT
from kdkge.sweeps import SWEEP_GROUP


class SweepsConfigSource(ConfigSource):
    """Hydra config source ``kdkge-sweeps://<folder>``: ``<folder>/*.yaml`` as options of group ``sweep``.

    A relative folder is taken relative to the repository root.  Every file there is a sweep (the
    Optuna search spaces of :mod:`kdkge.search` live apart, in ``searches/``).
    """

    def __init__(self, provider: str, path: str) -> None:
        if "://" not in path:
            path = f"{self.scheme()}://{path}"
        super().__init__(provider=provider, path=path)
        folder = Path(self.path).expanduser()
        self.folder = folder if folder.is_absolute() else REPO_ROOT / folder

    @staticmethod
    def scheme() -> str:
        return "kdkge-sweeps"

    def _file(self, config_path: str) -> Path | None:
        parts = config_path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != SWEEP_GROUP:
            return None
        name = parts[1] if parts[1].endswith(".yaml") else parts[1] + ".yaml"
        return self.folder / name

    def available(self) -> bool:
        return self.folder.is_dir()

    def is_group(self, config_path: str) -> bool:
        return config_path.strip("/") in ("", SWEEP_GROUP) and self.available()

    def is_config(self, config_path: str) -> bool:
        path = self._file(config_path)
        return path is not None and path.is_file()

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> list[str]:
        where = config_path.strip("/")
        if not self.available():
            return []
        if where == "" and results_filter in (None, ObjectType.GROUP):
            return [SWEEP_GROUP]
        if where == SWEEP_GROUP and results_filter in (None, ObjectType.CONFIG):
            return sorted(p.stem for p in self.folder.glob("*.yaml"))
        return []

    def load_config(self, config_path: str) -> ConfigResult:
        path = self._file(config_path)
        if path is None or not path.is_file():
            raise ConfigLoadError(f"Sweep config not found: {path or config_path}")
        text = path.read_text(encoding="utf-8")
        return ConfigResult(
            config=OmegaConf.create(text) if text.strip() else OmegaConf.create(),
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header=ConfigSource._get_header_dict(text[:512]),
        )


class SweepsSearchPath(SearchPathPlugin):
    """Puts ``kdkge-sweeps://sweeps`` on the search path of kdkge's own Hydra apps (those whose
    primary config folder is kdkge's ``conf/``), after their own entries; other Hydra apps in the
    same environment are left alone."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        paths = [entry.path for entry in search_path.get_path()]
        if SWEEPS_PATH not in paths and any(_is_kdkge_conf(p) for p in paths):
            search_path.append(provider="kdkge-sweeps", path=SWEEPS_PATH)


#: The search path entry of the sweep files (relative to the repository root, see :class:`SweepsConfigSource`).
SWEEPS_PATH = "kdkge-sweeps://sweeps"


def _is_kdkge_conf(path: str | None) -> bool:
    """Whether a search path entry (``file://<folder>`` or a plain folder) is kdkge's ``conf/``."""
    if not path or ("://" in path and not path.startswith("file://")):
        return False
    try:
        return Path(path.removeprefix("file://")).expanduser().resolve() == CONF_DIR.resolve()
    except OSError:
        return False
