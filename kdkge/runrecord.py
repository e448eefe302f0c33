"""The run record: every FINISHED training run of the reproduction, committed under ``results/runs/``.

MLflow's store (``mlflow.db``) is not committed and a new machine starts without it; the record
keeps what the tables need, so that ``make tables`` can rebuild every results file from git alone
and ``make import-record`` can fill a fresh store for ``make ui``.

Format: one gzip'ed JSON-lines file per experiment, ``results/runs/<experiment>.jsonl.gz`` (e.g.
``kdkge-umls.jsonl.gz``), one run per line with the keys

* ``run_id`` — the run's MLflow id where it was trained (kept through import/export),
* ``experiment``, ``run_name``, ``status`` (always ``FINISHED``),
* ``start_time``, ``end_time`` — milliseconds since the epoch, as MLflow stores them,
* ``params``, ``tags`` — string → string, as logged (``tags`` include ``protocol``, ``loss``,
  ``config_hash``, ``seed`` …; see :mod:`kdkge.schema`),
* ``metrics`` — name → final (latest) value, every metric the run logged except ``loss``,
* ``loss`` — the per-epoch training loss, one value per step; ``loss_steps``, the steps, only
  when they are not 1, 2, …, n.

No artifacts, checkpoints, plots or intermediate evaluations.  Floats are written as Python's
shortest round-trip ``repr`` (metrics are exact); the losses are rounded to 7 significant digits.
NaN and ±infinity are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

Deterministic: keys sorted, runs sorted by (start time, run id), gzip with mtime 0 and no file
name, so exporting the same runs twice gives byte-identical files (and a file whose runs did not
change is not rewritten).

Merging: ``export`` adds the store's runs to the record and updates those with the same run id;
runs in the record that the store lacks are kept — reading a smaller store never shrinks it.

``python -m kdkge.runrecord export`` (``make record``), ``import`` (``make import-record``),
``show`` (counts per experiment, protocol and loss).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .paths import EXPERIMENT_PREFIX, RECORD_DIR, experiment_name
SUFFIX = ".jsonl.gz"
#: experiments of training runs: kdkge-<dataset> (EXPERIMENT_PREFIX); the tables' own experiment is not a training run
EXCLUDED_EXPERIMENTS = (experiment_name("tables"),)
#: tag set on a run written by :func:`import_record`: the run id in the record
IMPORTED_TAG = "imported_from_record"
LOSS_DIGITS = 7

# --------------------------------------------------------------------------- #
# Encoding
# --------------------------------------------------------------------------- #

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _enc(v: float) -> float | str:
    v = float(v)
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def _dec(v) -> float:
    return _NONFINITE[v] if isinstance(v, str) else float(v)


def _round_loss(v: float) -> float | str:
    v = float(v)
    return _enc(float(f"{v:.{LOSS_DIGITS}g}") if math.isfinite(v) else v)


def encode_lines(records: Iterable[dict]) -> bytes:
    """The gzip'ed JSON lines of ``records`` (sorted by start time, run id): deterministic bytes."""
    ordered = sorted(records, key=lambda r: (r.get("start_time") or 0, r["run_id"]))
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"
                   for r in ordered)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    return buf.getvalue()


def decode_lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- #
# Reading and writing the record
# --------------------------------------------------------------------------- #


def record_files(record_dir: str | Path = RECORD_DIR) -> dict[str, Path]:
    """experiment name → its record file."""
    folder = Path(record_dir)
    if not folder.is_dir():
        return {}
    return {p.name[: -len(SUFFIX)]: p for p in sorted(folder.glob(f"*{SUFFIX}"))}


def read_record(record_dir: str | Path = RECORD_DIR, experiments: Sequence[str] | None = None) -> list[dict]:
    """All runs in the record (of ``experiments``, default all), as stored."""
    out = []
    for name, path in record_files(record_dir).items():
        if experiments is None or name in experiments:
            out.extend(decode_lines(path.read_bytes()))
    return out


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def record_frame(record_dir: str | Path = RECORD_DIR, experiments: Sequence[str] | None = None):
    """The record as ``mlflow.search_runs`` would return it (plus ``experiment``).

    Columns ``run_id``, ``experiment``, ``run_name``, ``status``, ``start_time``, ``end_time``
    (UTC timestamps), ``params.*``, ``tags.*``, ``metrics.*`` (NaN where a run lacks one), so that
    :func:`kdkge.reports.runs.normalise_runs` treats both sources alike.
    """
    import pandas as pd

    rows = []
    for r in read_record(record_dir, experiments):
        row = {"run_id": r["run_id"], "experiment": r["experiment"], "run_name": r.get("run_name"),
               "status": r.get("status", "FINISHED"), "start_time": r.get("start_time"), "end_time": r.get("end_time")}
        row.update({f"params.{k}": v for k, v in r.get("params", {}).items()})
        row.update({f"tags.{k}": v for k, v in r.get("tags", {}).items()})
        row.update({f"metrics.{k}": _dec(v) for k, v in r.get("metrics", {}).items()})
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame.from_records(rows)
    for col in ("start_time", "end_time"):
        df[col] = pd.to_datetime(df[col], unit="ms", utc=True)
    return df


# --------------------------------------------------------------------------- #
# From a store
# --------------------------------------------------------------------------- #


def store_experiments(store, experiments: Sequence[str] | None = None) -> list[str]:
    """The names of the store's experiments of training runs (``kdkge-*`` but ``kdkge-tables``), or those named."""
    found = store.experiment_names()
    if experiments is not None:
        return [e for e in found if e in experiments]
    return [e for e in found if e.startswith(EXPERIMENT_PREFIX) and e not in EXCLUDED_EXPERIMENTS]


def run_to_record(store, run, experiment: str) -> dict:
    """One MLflow run as a record line (the original run id when it was imported from a record)."""
    tags = dict(run.data.tags)
    run_id = tags.pop(IMPORTED_TAG, None) or run.info.run_id
    rec = {"run_id": run_id, "experiment": experiment, "run_name": run.info.run_name, "status": run.info.status,
           "start_time": run.info.start_time, "end_time": run.info.end_time, "params": dict(run.data.params),
           "tags": tags, "metrics": {k: _enc(v) for k, v in run.data.metrics.items() if k != "loss"}}
    if "loss" in run.data.metrics:
        history = store.metric_history(run.info.run_id, "loss")
        latest: dict[int, tuple[int, float]] = {}
        for m in history:  # several values at one step (a resumed run): the latest
            if m.step not in latest or m.timestamp >= latest[m.step][0]:
                latest[m.step] = (m.timestamp, m.value)
        steps = sorted(latest)
        rec["loss"] = [_round_loss(latest[s][1]) for s in steps]
        if steps != list(range(1, len(steps) + 1)):
            rec["loss_steps"] = steps
    return rec


def store_records(uri: str | None = None, experiments: Sequence[str] | None = None) -> list[dict]:
    """Every FINISHED run of the store's training experiments, as record lines."""
    from .store import RunStore

    store = RunStore(uri)
    if not store.exists():
        return []  # do not create a store just to read it
    out = []
    for name in store_experiments(store, experiments):
        out.extend(run_to_record(store, run, name) for run in store.runs(name, "attributes.status = 'FINISHED'"))
    return out


# --------------------------------------------------------------------------- #
# export
# --------------------------------------------------------------------------- #


@dataclass
class ExportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0  # in the record, not in the store: kept
    written: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.kept} kept from the "
                f"record (not in the store); {len(self.written)} file(s) rewritten")


def merge_records(old: Iterable[dict], new: Iterable[dict], report: ExportReport | None = None) -> list[dict]:
    """``old`` updated with ``new`` by run id; runs only in ``old`` are kept."""
    report = report if report is not None else ExportReport()
    merged = {r["run_id"]: r for r in old}
    seen = set()
    for r in new:
        seen.add(r["run_id"])
        before = merged.get(r["run_id"])
        if before is None:
            report.added += 1
        elif before == r:
            report.unchanged += 1
        else:
            report.updated += 1
        merged[r["run_id"]] = r
    report.kept += len(set(merged) - seen)
    return list(merged.values())


def export_record(uri: str | None = None, record_dir: str | Path = RECORD_DIR,
                  experiments: Sequence[str] | None = None) -> ExportReport:
    """Merge the store's FINISHED runs into the record (never dropping a run of the record)."""
    report = ExportReport()
    by_exp: dict[str, list[dict]] = {}
    for r in store_records(uri, experiments):
        by_exp.setdefault(r["experiment"], []).append(r)
    files = record_files(record_dir)
    for name in sorted(set(by_exp) | (set(files) if experiments is None else set(files) & set(experiments))):
        old = decode_lines(files[name].read_bytes()) if name in files else []
        merged = merge_records(old, by_exp.get(name, []), report)
        path = Path(record_dir) / f"{name}{SUFFIX}"
        if merged and _write_if_changed(path, encode_lines(merged)):
            report.written.append(path)
    return report


# --------------------------------------------------------------------------- #
# import
# --------------------------------------------------------------------------- #


@dataclass
class ImportReport:
    imported: int = 0
    skipped_id: int = 0  # the run (or an import of it) is already in the store
    skipped_hash: int = 0  # a FINISHED run with its config hash was already in the store
    experiments_created: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.imported} imported; skipped {self.skipped_id} already there (same run id) and "
                f"{self.skipped_hash} with a config hash the store already has FINISHED"
                + (f"; created {', '.join(self.experiments_created)}" if self.experiments_created else ""))


def _present(store, experiment: str) -> tuple[set[str], set[str]]:
    """(run ids and imported-from ids, config hashes of FINISHED runs) already in an experiment."""
    ids, hashes = set(), set()
    for run in store.runs(experiment):
        ids.add(run.info.run_id)
        tags = run.data.tags
        if IMPORTED_TAG in tags:
            ids.add(tags[IMPORTED_TAG])
        elif run.info.status == "FINISHED" and tags.get("config_hash"):
            hashes.add(tags["config_hash"])
    return ids, hashes


def write_run(tracker, rec: dict) -> str:
    """Create one FINISHED run from a record line in ``tracker``'s experiment; return its new id."""
    start = int(rec.get("start_time") or 0)
    tags = {**rec.get("tags", {}), IMPORTED_TAG: rec["run_id"]}
    run_id = tracker.create_run(rec.get("run_name"), start_time=start, context_tags=False)
    loss = rec.get("loss", [])
    steps = rec.get("loss_steps") or list(range(1, len(loss) + 1))
    last = steps[-1] if steps else 0
    rows = [(last, {k: _dec(v) for k, v in sorted(rec.get("metrics", {}).items())}, start)]
    rows += [(s, {"loss": _dec(v)}, start + s) for s, v in zip(steps, loss)]
    tracker.log_run_params(run_id, dict(sorted(rec.get("params", {}).items())))
    tracker.set_run_tags(run_id, dict(sorted(tags.items())))
    tracker.log_run_metric_steps(run_id, rows)
    tracker.terminate_run(run_id, "FINISHED", end_time=rec.get("end_time") or start)
    return run_id


def import_record(uri: str | None = None, record_dir: str | Path = RECORD_DIR,
                  experiments: Sequence[str] | None = None) -> ImportReport:
    """Load the record into a store; idempotent (runs already there, by id or config hash, are skipped).

    Experiments ``kdkge-<dataset>`` are created with the tag ``mlflow.experimentKind=custom_model_development``;
    every imported run keeps its name, start/end time, params, tags, final metrics and loss
    history, and gets the tag ``imported_from_record=<run id in the record>``.
    """
    from .mlflow_store import ensure_store
    from .store import RunStore
    from .tracking import MlflowTracker

    uri = ensure_store(uri)
    store = RunStore(uri)
    report = ImportReport()
    for name, path in record_files(record_dir).items():
        if experiments is not None and name not in experiments:
            continue
        if store.experiment_id(name) is None:
            report.experiments_created.append(name)
        tracker = MlflowTracker(uri, experiment=name)  # creates the experiment, tagged custom_model_development
        ids, hashes = _present(store, name)
        for rec in sorted(decode_lines(path.read_bytes()), key=lambda r: (r.get("start_time") or 0, r["run_id"])):
            if rec["run_id"] in ids:
                report.skipped_id += 1
            elif rec.get("tags", {}).get("config_hash") in hashes:
                report.skipped_hash += 1
            else:
                write_run(tracker, rec)
                ids.add(rec["run_id"])
                report.imported += 1
    return report


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def show(record_dir: str | Path = RECORD_DIR) -> str:
    lines = []
    for name, path in record_files(record_dir).items():
        runs = decode_lines(path.read_bytes())
        kinds = Counter((r["tags"].get("protocol", "paper_text (untagged)"), r["tags"].get("loss", "bce (untagged)"))
                        for r in runs)
        lines.append(f"{path} ({path.stat().st_size / 1024:.0f} KiB): {len(runs)} runs")
        lines += [f"  protocol={p} loss={loss}: {n}" for (p, loss), n in sorted(kinds.items())]
    return "\n".join(lines) if lines else f"no run record under {record_dir}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kdkge.runrecord", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["export", "import", "show"],
                   help="export: store → record (merging); import: record → store (idempotent); show: what the record holds")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///<repo>/mlflow.db)")
    p.add_argument("--record", default=str(RECORD_DIR), help="record folder (default: %(default)s)")
    p.add_argument("--experiments", nargs="+", default=None,
                   help="only these experiments (default: every kdkge-* experiment but kdkge-tables)")
    args = p.parse_args(argv)
    if args.command == "export":
        report = export_record(args.tracking_uri, args.record, args.experiments)
        print(f"run record {args.record}: {report.summary()}")
    elif args.command == "import":
        report = import_record(args.tracking_uri, args.record, args.experiments)
        print(f"import of {args.record}: {report.summary()}")
    else:
        print(show(args.record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
