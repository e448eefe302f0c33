"""Parent MLflow runs: one per sweep (``python train.py -m``) and one per Optuna study.

MLflow nests a run under another when it carries the tag ``mlflow.parentRunId``; the UI then shows
the parent as one expandable row with its children (runs of one experiment only).  A parent run
here records *what was launched*: the sweep's overrides (tag ``overrides``; each swept key also as
a param, e.g. ``dim = 4,9,16``), its plan and summary (artifacts), and a side-by-side table of its
children (``children.csv`` and ``children.md``: one row per run with the keys that vary and the
headline metrics), which the sweeper also prints at the end.

A parent is found again by its identifying tags (``kind`` plus ``sweep_id`` or ``optuna_study``):
relaunching an interrupted sweep (same sweep id) or resuming a study reopens the same parent, so
all runs of a sweep end up under one row however many launches trained them.

Parents carry no ``config_hash``, ``model`` or ``dataset`` tag: skip-finished, the tables and the
reports never take them for training runs.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: Values of the tag ``kind`` that mark a parent run.
PARENT_KINDS = ("sweep", "optuna_study")

#: Metrics of the children shown in the table (those a child logged; others are left out).
CHILD_METRICS = ("valid_mrr", "test_mrr", "test_hits_1", "test_hits_3", "test_hits_10", "paper_test_mrr",
                 "num_parameters", "wall_time_s")


class ParentRun:
    """A parent run in ``experiment`` of the store ``uri``, created or reopened (see the module doc).

    Written through an :class:`~kdkge.tracking.MlflowTracker`, read through a :class:`~kdkge.store.RunStore`.
    """

    def __init__(self, uri: str, experiment: str, *, kind: str, key: Mapping[str, str], name: str,
                 tags: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None):
        from .store import RunStore
        from .tracking import MlflowTracker

        self.tracker = MlflowTracker(uri, experiment=experiment)  # creates the experiment (with its kind tag) if needed
        self.uri, self.experiment = self.tracker.tracking_uri, experiment
        self.store = RunStore(self.uri)
        identity = {"kind": kind, **{k: str(v) for k, v in key.items()}}
        found = self.store.newest_run(experiment, " and ".join(f"tags.{k} = '{v}'" for k, v in identity.items()))
        if found is not None:
            self.run_id = found.info.run_id
            self.reopened = True
            self.tracker.reopen_run(self.run_id)
        else:
            self.run_id = self.tracker.create_run(name, identity)
            self.reopened = False
        self.set_tags(tags or {})
        if params:
            self.log_params(params)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tracker.set_run_tags(self.run_id, tags)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params once (MLflow refuses to change a param): keys already logged are left alone."""
        have = self.store.run(self.run_id).data.params
        self.tracker.log_run_params(self.run_id, {k: v for k, v in params.items() if str(k) not in have})

    def log_text(self, text: str, artifact_file: str) -> None:
        self.tracker.log_run_text(self.run_id, text, artifact_file)

    def end(self, status: str = "FINISHED") -> None:
        self.tracker.terminate_run(self.run_id, status)

    def metrics_of(self, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """run id → its latest metrics (runs that no longer exist are left out)."""
        ids = sorted({r for r in run_ids if r})
        out: dict[str, dict[str, float]] = {}
        for i in range(0, len(ids), 100):
            chunk = ids[i:i + 100]
            query = "attributes.run_id IN (" + ",".join(f"'{r}'" for r in chunk) + ")"
            for run in self.store.runs(self.experiment, query, max_results=len(chunk)):
                out[run.info.run_id] = dict(run.data.metrics)
        return out


def without_parents(runs):
    """A ``find_runs``/``mlflow.search_runs`` DataFrame without the parent runs (the training runs only)."""
    if "tags.kind" not in runs.columns:
        return runs
    return runs[~runs["tags.kind"].isin(PARENT_KINDS)]


def swept_params(override_lists: Iterable[Sequence[str]], skip: Iterable[str] = ()) -> dict[str, str]:
    """key → its values over all jobs, comma-joined in first-seen order (``dim = 4,9,16``)."""
    values: dict[str, list[str]] = {}
    skip = set(skip)
    for overrides in override_lists:
        for text in overrides:
            key, sep, value = text.partition("=")
            key = key.lstrip("+~")
            if sep and key not in skip and value not in values.setdefault(key, []):
                values[key].append(value)
    return {k: ",".join(v) for k, v in values.items()}


def varying_keys(override_lists: Sequence[Sequence[str]], skip: Iterable[str] = ()) -> list[str]:
    """Keys whose value differs between jobs (or is missing in some): the columns that tell them apart."""
    jobs = [{o.partition("=")[0].lstrip("+~"): o.partition("=")[2] for o in overrides} for overrides in override_lists]
    return [k for k in swept_params(override_lists, skip) if len({job.get(k) for job in jobs}) > 1]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 100 else f"{value:.4f}"
    return str(value)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> tuple[str, str]:
    """(CSV text, Markdown text) of ``rows`` in ``columns`` (metrics no row has are dropped)."""
    columns = [c for c in columns if any(r.get(c) not in (None, "") for r in rows) or c in ("#", "run", "status")]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: r.get(c, "") if not isinstance(r.get(c), float) else repr(r[c]) for c in columns})
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    return buffer.getvalue(), "\n".join(lines) + "\n"


def child_rows(parent: ParentRun, entries: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One row per entry (``index``, ``name``, ``status``, ``run_id``, ``overrides``) with the varying
    ``keys`` and the :data:`CHILD_METRICS` the entry's run logged."""
    metrics = parent.metrics_of(e.get("run_id") for e in entries)
    rows = []
    for e in entries:
        given = {o.partition("=")[0].lstrip("+~"): o.partition("=")[2] for o in e.get("overrides", [])}
        row = {"#": e.get("index", ""), "run": e.get("name", ""), **{k: given.get(k, "") for k in keys},
               "status": e.get("status", ""), "run_id": e.get("run_id") or ""}
        row.update({m: metrics.get(e.get("run_id") or "", {}).get(m) for m in CHILD_METRICS})
        rows.append(row)
    return rows


def log_children(parent: ParentRun, rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> str:
    """Log ``children.csv`` / ``children.md`` to the parent; return the Markdown table."""
    columns = ["#", "run", *keys, "status", *CHILD_METRICS, "run_id"]
    csv_text, md_text = table(rows, columns)
    parent.log_text(csv_text, "children.csv")
    parent.log_text(md_text, "children.md")
    return md_text


def log_json(parent: ParentRun, data: Any, artifact_file: str) -> None:
    parent.log_text(json.dumps(data, indent=2, default=str), artifact_file)
