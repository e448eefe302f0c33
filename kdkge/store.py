"""Reading an MLflow store: the one :class:`RunStore` every reader of runs goes through.

Writing runs is :mod:`kdkge.tracking`'s; the store's URI, creation and locks are
:mod:`kdkge.mlflow_store`'s.  This module builds the one ``MlflowClient`` that reads and
``tracking.py`` the one that writes (``tests/test_one_way_to_mlflow.py``).  A :class:`RunStore` answers:

* :meth:`RunStore.experiment_names`, :meth:`RunStore.experiment_id` — what the store holds;
* :meth:`RunStore.finished_run` — the FINISHED run of a config hash (skip-finished);
* :meth:`RunStore.finished_runs` — config hash → newest FINISHED run of an experiment (sweeps);
* :meth:`RunStore.sweep_runs` — the runs of one sweep launch;
* :meth:`RunStore.runs` / :meth:`RunStore.newest_run` — runs matching an MLflow filter, newest first;
* :meth:`RunStore.run`, :meth:`RunStore.metrics`, :meth:`RunStore.metric_history`, :meth:`RunStore.download` —
  one run, its final metrics, the history of one metric, an artifact;
* :meth:`RunStore.frame` — runs as a pandas DataFrame (the layout of ``mlflow.search_runs``).

Nothing here creates a store: a missing SQLite file reads as an empty store.
"""

from __future__ import annotations

import os
from typing import Any

from .mlflow_store import _is_sqlite, _retry_locked, _sqlite_path, check_reachable, resolve_tracking_uri

__all__ = ["RunStore", "find_runs"]


class RunStore:
    """The runs of the MLflow store ``uri`` (``None``: :func:`kdkge.mlflow_store.default_tracking_uri`)."""

    def __init__(self, uri: str | None = None):
        self.uri = resolve_tracking_uri(uri)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(self.uri)
        return self._client

    def _read(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, retried while a SQLite store is locked by a writer."""
        if _is_sqlite(self.uri):
            return _retry_locked(fn, *args, store=str(_sqlite_path(self.uri)), **kwargs)
        return fn(*args, **kwargs)

    def exists(self) -> bool:
        """False for a SQLite store whose file does not exist (servers and SQL databases: True)."""
        return not _is_sqlite(self.uri) or _sqlite_path(self.uri).exists()

    # --- experiments -------------------------------------------------------------------------
    def experiment_names(self) -> list[str]:
        """The names of the store's active experiments (none for a missing store)."""
        if not self.exists():
            return []
        return sorted(e.name for e in self._read(self.client.search_experiments))

    def experiment_id(self, experiment: str) -> str | None:
        if not self.exists():
            return None
        found = self._read(self.client.get_experiment_by_name, experiment)
        return None if found is None else found.experiment_id

    # --- runs -----------------------------------------------------------------------------
    def runs(self, experiment: str, filter_string: str = "", max_results: int | None = None) -> list:
        """MLflow ``Run`` objects of ``experiment`` matching ``filter_string``, newest first (all pages)."""
        check_reachable(self.uri)  # an unreachable server fails in seconds, not after MLflow's retries
        experiment_id = self.experiment_id(experiment)
        if experiment_id is None:
            return []
        runs, token = [], None
        while True:
            page = self._read(self.client.search_runs, [experiment_id], filter_string=filter_string,
                              max_results=min(max_results or 1000, 1000), order_by=["attributes.start_time DESC"],
                              page_token=token)
            runs.extend(page)
            token = page.token
            if not token or (max_results is not None and len(runs) >= max_results):
                return runs[:max_results] if max_results is not None else runs

    def newest_run(self, experiment: str, filter_string: str):
        """The newest run matching ``filter_string``, or None."""
        found = self.runs(experiment, filter_string, max_results=1)
        return found[0] if found else None

    def finished_run(self, experiment: str, config_hash: str) -> str | None:
        """The id of a FINISHED run tagged ``config_hash`` in ``experiment``, or None."""
        run = self.newest_run(experiment, f"tags.config_hash = '{config_hash}' and attributes.status = 'FINISHED'")
        return None if run is None else run.info.run_id

    def finished_runs(self, experiment: str) -> dict[str, str]:
        """config hash → id of the newest FINISHED run in ``experiment``."""
        done: dict[str, str] = {}
        for run in self.runs(experiment, "attributes.status = 'FINISHED'") if self.exists() else []:
            digest = run.data.tags.get("config_hash")
            if digest and digest not in done:
                done[digest] = run.info.run_id
        return done

    def sweep_runs(self, experiment: str, sweep_id: str, since_ms: int = 0) -> dict[str, Any]:
        """config hash → the newest run tagged ``sweep_id`` that started at or after ``since_ms``."""
        newest: dict[str, Any] = {}
        for run in self.runs(experiment, f"tags.sweep_id = '{sweep_id}' and attributes.start_time >= {since_ms}"):
            digest = run.data.tags.get("config_hash")
            if digest and digest not in newest:
                newest[digest] = run
        return newest

    def run(self, run_id: str):
        """The MLflow ``Run`` ``run_id`` (``MlflowException`` if the store has none)."""
        return self._read(self.client.get_run, str(run_id))

    def download(self, run_id: str, artifact: str, folder: str) -> str:
        """Download the artifact ``artifact`` of run ``run_id`` into ``folder``; its local path."""
        return self.client.download_artifacts(str(run_id), artifact, str(folder))

    def metrics(self, run_id: str) -> dict[str, float]:
        """The last value of every metric of run ``run_id``."""
        return dict(self._read(self.client.get_run, run_id).data.metrics)

    def metric_history(self, run_id: str, key: str) -> list:
        """Every logged value of the metric ``key`` of run ``run_id`` (MLflow ``Metric`` objects)."""
        return list(self._read(self.client.get_metric_history, str(run_id), key))

    # --- frames ---------------------------------------------------------------------------
    def frame(self, experiment: str, filter_string: str = "", **search_kwargs: Any):
        """Runs of ``experiment`` as a pandas DataFrame, one row per run (columns ``run_id``, ``status``,
        ``params.*``, ``metrics.*``, ``tags.*``, ...) — ``mlflow.search_runs`` without touching the
        global tracking URI.  ``filter_string`` uses MLflow's search syntax, e.g.
        ``"params.model = 'kd_distmult' and attributes.status = 'FINISHED'"``.  Empty if the store or
        the experiment does not exist.
        """
        import mlflow
        import pandas as pd
        from mlflow.tracking._tracking_service import utils as tracking_utils

        if not self.exists() or self.experiment_id(experiment) is None:
            return pd.DataFrame()  # do not create a store just to search it
        # mlflow.search_runs reads the global tracking URI, and setting it also sets
        # $MLFLOW_TRACKING_URI: restore both afterwards.
        previous_uri = tracking_utils._tracking_uri
        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.uri)
        try:
            return mlflow.search_runs(experiment_names=[experiment], filter_string=filter_string, output_format="pandas",
                                      **search_kwargs)
        finally:
            mlflow.set_tracking_uri(previous_uri)
            if previous_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_env


def find_runs(uri: str | None = None, experiment: str = "kdkge", filter_string: str = "", **search_kwargs: Any):
    """``RunStore(uri).frame(experiment, filter_string, ...)`` (see :meth:`RunStore.frame`)."""
    return RunStore(uri).frame(experiment, filter_string, **search_kwargs)
