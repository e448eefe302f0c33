"""The typed parameters of the kdkge sweeper (``hydra.sweeper.*``), registered as ``hydra/sweeper/kdkge_schema``.

``conf/hydra/sweeper/kdkge.yaml`` extends this schema (its defaults list) and documents each key;
so ``hydra.sweeper.dry_run=maybe`` or a misspelt key fails when Hydra composes the config.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class KdkgeSweeperConf:
    _target_: str = "hydra_plugins.kdkge_sweeper.kdkge_sweeper.KdkgeSweeper"
    max_batch_size: Optional[int] = None  # launch at most this many jobs per launcher call; null = all at once
    params: Optional[Dict[str, Any]] = None  # {key: "v1,v2,..."} swept as a cartesian product (set by sweep files)
    grids: Optional[List[Any]] = None  # list of {key: values} grids; the sweep is the union of their products
    dry_run: bool = False  # print the runs (train / skip / invalid / stacked) and their count, launch nothing
    stack: bool = True  # train runs that differ only in calibration, α (and, on clean data, seed) as one stacked job
    skip_finished: bool = True  # do not launch runs MLflow already holds as FINISHED (same config hash)


ConfigStore.instance().store(group="hydra/sweeper", name="kdkge_schema", node=KdkgeSweeperConf, provider="kdkge")
