"""What the sweeper reads from MLflow: the FINISHED runs of an experiment, the runs of a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def store_exists(uri: str) -> bool:
    """False for a SQLite store whose file does not exist yet (nothing to look up, nothing created)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):].split("?", 1)[0]).exists()
    return True


def _search_all(uri: str, experiment: str, filter_string: str) -> list:
    from mlflow.tracking import MlflowClient

    from kdkge.tracking import check_reachable

    check_reachable(uri)  # an unreachable server fails in seconds, not after MLflow's retries
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], filter_string=filter_string, max_results=1000,
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def finished_runs(uri: str, experiment: str) -> dict[str, str]:
    """config hash → id of the newest FINISHED run in ``experiment`` (nothing created if missing)."""
    if not store_exists(uri):
        return {}
    done: dict[str, str] = {}
    for run in _search_all(uri, experiment, "attributes.status = 'FINISHED'"):
        digest = run.data.tags.get("config_hash")
        if digest and digest not in done:
            done[digest] = run.info.run_id
    return done


def sweep_runs(uri: str, experiment: str, sweep_id: str, since_ms: int) -> dict[str, Any]:
    """config hash → the newest run tagged ``sweep_id`` that started at or after ``since_ms``."""
    newest: dict[str, Any] = {}
    for run in _search_all(uri, experiment, f"tags.sweep_id = '{sweep_id}' and attributes.start_time >= {since_ms}"):
        digest = run.data.tags.get("config_hash")
        if digest and digest not in newest:
            newest[digest] = run
    return newest
