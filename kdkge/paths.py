"""Where things are: the repository's folders and the MLflow experiment names.

One module so that no other module computes ``Path(__file__).parent.parent`` or spells
``"kdkge-" + dataset`` itself.  Import-free of the rest of :mod:`kdkge` (a leaf module).
"""

from __future__ import annotations

from pathlib import Path

#: The repository root (the checkout that holds ``kdkge/``, ``conf/``, ``data/``).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Hydra's config tree.
CONF_DIR = REPO_ROOT / "conf"
#: The built-in datasets (UMLS, KINSHIP, NATIONS), one folder each.
DATA_ROOT = REPO_ROOT / "data"
#: Generated tables, reports and the committed run record.
RESULTS_DIR = REPO_ROOT / "results"
#: The committed run record (``results/runs/kdkge-<dataset>.jsonl.gz``).
RECORD_DIR = RESULTS_DIR / "runs"
#: The named sweep files (``sweeps/<name>.yaml``).
SWEEPS_DIR = REPO_ROOT / "sweeps"
#: The Optuna search spaces (``searches/<name>.yaml``, :mod:`kdkge.search`).
SEARCHES_DIR = REPO_ROOT / "searches"
#: Local caches that are never committed (dataset digests, claims).
CACHE_DIR = REPO_ROOT / ".cache"
#: The paper's Tables 1-6 as data, shipped inside the package.
PAPER_CSV = Path(__file__).resolve().parent / "paper" / "paper_tables.csv"

#: Prefix of the MLflow experiment that holds a dataset's runs.
EXPERIMENT_PREFIX = "kdkge-"


def experiment_name(dataset: str) -> str:
    """The MLflow experiment of a dataset's runs: ``kdkge-<dataset>`` (e.g. ``kdkge-umls``)."""
    return f"{EXPERIMENT_PREFIX}{dataset}"
