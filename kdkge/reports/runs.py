"""The one loader of runs for every report: from the MLflow store or from the run record.

:func:`fetch_runs` returns rows in the layout of ``mlflow.search_runs`` (``run_id``, ``status``,
``start_time``, ``experiment``, ``params.*``, ``tags.*``, ``metrics.*``) from either source —
the store through :func:`kdkge.store.find_runs`, the record (``results/runs/``) through
:func:`kdkge.runrecord.record_frame` — and :func:`normalise_runs` turns them into typed columns.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from ..schema import PAPER_TEST_GROUP_METRICS, PAPER_TEST_LOTTERY_METRICS, SPLITS, metric_key
from .common import METRICS, UNTAGGED_LOSS, UNTAGGED_PROTOCOL, Variant
from .paper import PAPER_SETTINGS, PAPER_STRATEGY

log = logging.getLogger("kdkge.tables")

#: splits whose final metrics a run row carries: train/valid/test and the authors' 2022 test split
METRIC_SPLITS = (*SPLITS, "paper_test")


def fetch_runs(tracking_uri: str | None, experiments: Sequence[str], record: str | Path | None = None) -> pd.DataFrame:
    """All runs (any status) of ``experiments`` as one DataFrame in ``mlflow.search_runs``' layout.

    From the store ``tracking_uri``, or, when ``record`` is given, from the run record in that
    folder (only FINISHED runs are recorded). Adds a column ``experiment``. Missing experiments
    (or a missing SQLite store, or an empty record) give no rows; nothing is created.
    """
    if record is not None:
        from ..runrecord import record_frame

        return record_frame(record, experiments)
    from ..store import find_runs

    frames = []
    for name in experiments:
        df = find_runs(tracking_uri, experiment=name)
        if df.empty:
            log.info("experiment %s: no runs (or no such experiment)", name)
            continue
        frames.append(df.assign(experiment=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@dataclass
class RunPool:
    """Normalised FINISHED runs (one row per run, newest per config hash) and what was dropped."""

    runs: pd.DataFrame
    n_fetched: int = 0
    n_not_finished: int = 0
    n_untagged: int = 0
    #: (config_hash, run used, superseded older FINISHED runs)
    duplicates: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def of(self, variant: Variant) -> "RunPool":
        """The runs of one protocol with one loss (the counts stay those of the whole pool)."""
        runs = self.runs
        if not runs.empty:
            runs = runs[(runs["protocol"] == variant.protocol) & (runs["loss"] == variant.loss)]
        ids = set(runs["run_id"])
        return replace(self, runs=runs.reset_index(drop=True), duplicates=[d for d in self.duplicates if d[1] in ids])


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    if name in raw.columns:
        return raw[name]
    return pd.Series([None] * len(raw), index=raw.index, dtype=object)


def _param_column(raw: pd.DataFrame, leaves: Sequence[str]) -> pd.Series:
    """A logged hyperparameter wherever the config nests it (``params.lr``, ``params.train.lr``...)."""
    keys = sorted((c for c in raw.columns if c.startswith("params.") and c.split(".")[-1] in leaves),
                  key=lambda c: (c.count("."), c))
    out = pd.Series([None] * len(raw), index=raw.index, dtype=object)
    for key in keys:
        out = out.where(out.notna(), raw[key])
    return out


def _number(series: pd.Series) -> pd.Series:
    values = series.astype(object)
    values = values.where(values.map(lambda v: not (isinstance(v, str) and not v.strip())), None)
    return pd.to_numeric(values, errors="coerce").astype(float)


def _text(series: pd.Series, default: str) -> pd.Series:
    return series.astype(object).where(series.notna() & (series.astype(str) != ""), default).astype(object)


def _deviations(row: pd.Series) -> str:
    """'' for a run at the paper's settings, else e.g. ``'epochs=50, lr not logged'``."""
    out = []
    for key, want in PAPER_SETTINGS.items():
        have = row[key]
        if pd.isna(have):
            out.append(f"{key} not logged")
        elif not math.isclose(float(have), want, rel_tol=1e-9):
            out.append(f"{key}={float(have):g}")
    strategy = row["strategy"]
    if isinstance(strategy, str) and strategy and strategy != PAPER_STRATEGY:
        out.append(f"strategy={strategy}")
    return ", ".join(out)


BEST_COLUMNS = ["best_epoch"] + [f"best_{metric_key(s, m)}" for s in METRIC_SPLITS for m in METRICS]
#: the calibration metrics of σ(score) (:mod:`kdkge.calibration_metrics`) on valid and test
CALIBRATION_KEYS = ("ece", "brier", "top1_ece")
CALIBRATION_COLUMNS = [f"{s}_{k}" for s in ("valid", "test") for k in CALIBRATION_KEYS]
RUN_COLUMNS = (
    ["run_id", "store_run_id", "experiment", "start_time", "model", "variant", "dataset", "calibration", "alpha",
     "noise", "dim", "seed", "epochs", "lr", "batch_size", "strategy", "protocol", "loss", "config_hash", "code_commit", "params",
     "wall_time_s", "stack_id"]
    + [metric_key(s, m) for s in METRIC_SPLITS for m in METRICS] + BEST_COLUMNS + CALIBRATION_COLUMNS
    + list(PAPER_TEST_GROUP_METRICS) + list(PAPER_TEST_LOTTERY_METRICS) + ["superseded", "deviations"]
)


def _typed(finished: pd.DataFrame) -> pd.DataFrame:
    tag = lambda name: _column(finished, f"tags.{name}")  # noqa: E731
    metric = lambda name: _number(_column(finished, f"metrics.{name}"))  # noqa: E731
    imported = _column(finished, "tags.imported_from_record")  # a run imported from the record keeps its id
    return pd.DataFrame({
        "run_id": imported.where(imported.notna() & (imported.astype(str) != ""), _column(finished, "run_id")),
        "store_run_id": _column(finished, "run_id"),  # the id in the store read (differs for an imported run)
        "experiment": _column(finished, "experiment"),
        "start_time": pd.to_datetime(_column(finished, "start_time"), utc=True),
        "model": tag("model").astype(object),
        "variant": _text(_column(finished, "params.model.options.variant"), ""),  # scaled_distmult's option
        "dataset": tag("dataset").astype(object).str.lower(),
        "calibration": tag("calibration").astype(object).fillna("none").replace("", "none").str.lower(),
        "alpha": _number(tag("alpha")),
        "noise": _number(tag("noise_ratio")).fillna(0.0),
        "dim": _number(tag("dim")),
        "seed": _number(tag("seed").where(tag("seed").notna(), _param_column(finished, ["seed"]))),
        "epochs": _number(tag("epochs").where(tag("epochs").notna(), _param_column(finished, ["epochs"]))),
        "lr": _number(_param_column(finished, ["lr", "learning_rate"])),
        "batch_size": _number(_param_column(finished, ["batch_size"])),
        "strategy": tag("strategy").astype(object),
        "protocol": _text(tag("protocol"), UNTAGGED_PROTOCOL),
        "loss": _text(tag("loss"), UNTAGGED_LOSS),
        "config_hash": tag("config_hash").astype(object).fillna(""),
        "code_commit": _text(tag("git_commit"), "").str.slice(0, 7),  # the code that made the run (short hash)
        "params": metric("num_parameters"),
        "wall_time_s": metric("wall_time_s"),
        "stack_id": _text(tag("stack_id"), ""),  # runs trained together in one job share it (and its wall time)
        **{metric_key(s, m): metric(metric_key(s, m)) for s in METRIC_SPLITS for m in METRICS},
        **{c: metric(c) for c in BEST_COLUMNS + CALIBRATION_COLUMNS},
        **{c: metric(c) for c in PAPER_TEST_GROUP_METRICS},
        **{c: metric(c) for c in PAPER_TEST_LOTTERY_METRICS},
    })


def normalise_runs(raw: pd.DataFrame) -> RunPool:
    """FINISHED runs with typed columns (see :data:`RUN_COLUMNS`), newest per ``config_hash``.

    ``protocol``/``loss`` default to paper_text/bce (runs recorded before protocols existed).
    A run imported from the record (tag ``imported_from_record``) keeps its original run id
    (``store_run_id``: its id in the store read). ``variant``: the model option ``variant``
    (scaled_distmult's dot/abs/temperature; ``''`` for models without it).
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
    if raw.empty:
        return RunPool(empty)
    pool = RunPool(empty, n_fetched=len(raw))
    finished = raw[_column(raw, "status") == "FINISHED"]
    pool.n_not_finished = len(raw) - len(finished)
    df = _typed(finished)
    tagged = df["model"].notna() & df["dataset"].notna() & df["dim"].notna()
    pool.n_untagged = int((~tagged).sum())
    df = df[tagged].copy()
    df["dim"] = df["dim"].astype(int)
    df.loc[df["calibration"] == "none", "alpha"] = float("nan")
    # Duplicates: of several FINISHED runs with one config hash, the newest wins.
    df = df.sort_values(["start_time", "run_id"], ascending=False, kind="stable")
    df["superseded"] = 0
    keep = []
    for hash_, group in df.groupby("config_hash", sort=False):
        if not hash_ or len(group) == 1:
            keep.extend(group.index)
            continue
        keep.append(group.index[0])
        df.loc[group.index[0], "superseded"] = len(group) - 1
        pool.duplicates.append((hash_, group["run_id"].iloc[0], list(group["run_id"].iloc[1:])))
    df = df.loc[keep]
    df["deviations"] = df.apply(_deviations, axis=1) if len(df) else pd.Series(dtype=object)
    pool.runs = df.sort_values(["start_time", "run_id"], ascending=False, kind="stable").reset_index(drop=True)
    return pool


def load_runs(tracking_uri: str | None, experiments: Sequence[str], record: str | Path | None = None) -> RunPool:
    """:func:`normalise_runs` of :func:`fetch_runs`: the store's runs, or the record's."""
    return normalise_runs(fetch_runs(tracking_uri, experiments, record))


def has_training_runs(raw: pd.DataFrame) -> bool:
    """Whether ``raw`` holds a FINISHED run with the tags the tables need."""
    return not normalise_runs(raw).runs.empty


def at_paper_settings(runs: pd.DataFrame, *, any_seed: bool = True) -> pd.DataFrame:
    """The runs at the paper's settings (1000 epochs, lr 0.01, batch 1024, 1vsAll; seed 1 unless
    ``any_seed``), clean data and no calibration, as they come (newest first)."""
    if runs.empty:
        return runs
    ok = ((runs.calibration == "none") & (runs.noise.abs() < 1e-9) & runs.seed.notna()
          & (runs.strategy.fillna(PAPER_STRATEGY) == PAPER_STRATEGY))
    for key, want in PAPER_SETTINGS.items():
        if key != "seed" or not any_seed:
            ok &= (runs[key] - want).abs() < 1e-9
    return runs[ok]


def model_names(runs: pd.DataFrame) -> pd.Series:
    """The model of each run, with scaled_distmult's variant: ``scaled_distmult (abs)``.  Reports that
    group runs by model use it, so that runs of different variants never count as seeds of one cell."""
    variant = runs["variant"].fillna("").astype(str)
    return runs["model"].astype(str).where(variant == "", runs["model"].astype(str) + " (" + variant + ")")


def per_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """One run per seed, the newest (``runs`` hold one configuration apart from the seed)."""
    return runs.sort_values("start_time", ascending=False, kind="stable").drop_duplicates("seed")
