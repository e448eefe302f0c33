"""What the kdkge sweeper prints and records about a sweep: the plan, the parent runs, the summary.

* :func:`print_plan` — the runs a sweep launches, skips or refuses (all of them under a dry run);
* :func:`open_parents` / :func:`close_parents` — one MLflow parent run per (store, experiment)
  under which the sweep's runs are nested (:mod:`kdkge.parent_runs`), with the plan, the children
  table and the summary as artifacts;
* :func:`summarise` / :func:`print_summary` — finished / skipped / failed runs with reasons (from
  MLflow, found by the sweep id), written to ``<sweep dir>/sweep_summary.json``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus

from kdkge.store import RunStore
from kdkge.sweeps import MEMBERS_KEY, PARENT_KEY, SWEEP_ID_KEY, key_of, one_line

log = logging.getLogger(__name__)


def _state(r, skip_finished: bool, unit_of_run: dict, units) -> str:
    """A planned run's state in the plan: invalid, duplicate, skip or train (stacked)."""
    if r.error:
        return f"invalid: {r.error}"
    if r.status == "duplicate":
        return f"duplicate of #{r.duplicate_of}"
    if r.done_run and skip_finished:
        return f"skip: FINISHED run {r.done_run}"
    n = unit_of_run.get(r.index)
    return "train" + (f" (stacked job {n}: {len(units[n].members)} runs)" if n is not None and len(units[n].members) > 1 else "")


def open_parents(skip_finished: bool, name, sweep_id, runs, units, arguments, kind, sweep_dir) -> dict:
    """One parent run per (store, experiment) of the sweep's runs; its id goes to every job there.

    A parent that cannot be created (e.g. the server refuses) is a warning: the sweep runs unnested.
    """
    from kdkge.parent_runs import ParentRun, log_json, swept_params

    parents: dict[tuple[str, str], Any] = {}
    keys = sorted({r.tracking for r in runs if r.tracking and not r.error and r.status != "duplicate"})
    params = swept_params((r.overrides for r in runs if r.tracking), skip=(SWEEP_ID_KEY, PARENT_KEY, MEMBERS_KEY))
    member_unit = {i: n for n, u in enumerate(units) for i in u.members}
    plan = [{"index": r.index, "name": r.name, "overrides": r.overrides, "config_hash": r.digest,
             "state": ("invalid: " + r.error) if r.error else f"duplicate of #{r.duplicate_of}" if r.status == "duplicate"
             else f"skip: FINISHED run {r.done_run}" if r.done_run and skip_finished else "train",
             "job": member_unit.get(r.index)} for r in runs]
    for key in keys:
        try:
            parent = ParentRun(
                key[0], key[1], kind="sweep", key={SWEEP_ID_KEY: sweep_id}, name=sweep_id,
                tags={"sweep": name, "overrides": " ".join(arguments), "launcher": kind,
                      "runs": str(sum(r.tracking == key for r in runs if r.status != "duplicate")),
                      "multirun_dir": str(sweep_dir)},
                params=dict(list(params.items())[:100]),
            )
            log_json(parent, plan, "plan.json")
            parents[key] = parent
            print(f"MLflow parent run {parent.run_id} ({'reopened' if parent.reopened else 'new'}) in experiment "
                  f"{key[1]!r}: the runs of this sweep are nested under it")
        except Exception as exc:
            log.warning("could not create the sweep's parent run in %s: %s", key[1], one_line(exc))
    for u in units:
        key = runs[u.members[0]].tracking
        if key in parents and not any(key_of(o) == PARENT_KEY for o in u.overrides):
            u.overrides.append(f"{PARENT_KEY}='{parents[key].run_id}'")
    return parents

def close_parents(parents, runs, summary, status) -> None:
    """Children table (logged and printed), the summary, the counts; then end each parent."""
    from kdkge.parent_runs import child_rows, log_children, log_json, varying_keys

    if not parents:
        return
    entries = {e["index"]: e for e in summary["runs"]}
    columns = varying_keys([r.overrides for r in runs if r.status != "duplicate"],
                           skip=(SWEEP_ID_KEY, PARENT_KEY, MEMBERS_KEY))
    for key, parent in parents.items():
        try:
            mine = [entries[r.index] for r in runs if r.tracking == key and r.status != "duplicate"]
            text = log_children(parent, child_rows(parent, mine, columns), columns)
            log_json(parent, summary, "sweep_summary.json")
            counts = {s: sum(e["status"] == s for e in mine) for s in ("finished", "skipped", "failed")}
            parent.set_tags({"counts": ", ".join(f"{n} {s}" for s, n in counts.items())})
            print(f"\nruns of sweep {summary['sweep_id']} in experiment {key[1]!r} (parent run {parent.run_id}; "
                  "children.csv/.md there):")
            print(text, end="")
        except Exception as exc:
            log.warning("could not record the children of parent run %s: %s", parent.run_id, one_line(exc))
        finally:
            try:
                parent.end(status)
            except Exception as exc:
                log.warning("could not end parent run %s: %s", parent.run_id, one_line(exc))


def print_plan(dry_run: bool, skip_finished: bool, name, sweep_id, runs, units, kind, threads, lookup_error) -> None:
    valid = [r for r in runs if not r.error and r.status != "duplicate"]
    skip = [r for r in valid if r.done_run and skip_finished]
    invalid = [r for r in runs if r.error]
    dups = [r for r in runs if r.status == "duplicate"]
    stacked = [u for u in units if len(u.members) > 1]
    if dry_run:
        print(f"sweep {sweep_id}: the runs it launches ({kind} launcher)")
        member_unit = {i: n for n, u in enumerate(units) for i in u.members}
        for r in runs:
            state = _state(r, skip_finished, member_unit, units)
            print(f"  #{r.index:<3} {r.name:<40} {' '.join(r.overrides):<70} [{state}]")
    print(
        f"sweep {sweep_id}: {len(valid)} runs: {len(valid) - len(skip)} to train in {len(units)} job"
        f"{'' if len(units) == 1 else 's'}"
        + (f" ({len(stacked)} of them stacked, holding {sum(len(u.members) for u in stacked)} runs)" if stacked else "")
        + f", {len(skip)} already finished (skipped), {len(invalid)} invalid"
        + (f", {len(dups)} duplicate overrides merged" if dups else "")
        + (f"; threads={threads} per job" if threads else "")
    )
    if lookup_error:
        print(f"note: could not read MLflow ({lookup_error}); finished runs are not marked")
    if not dry_run:
        for r in skip:
            print(f"skip {r.name}: MLflow already holds FINISHED run {r.done_run} with config hash {r.digest[:12]} (force=true re-runs)")
        for r in invalid:
            print(f"invalid #{r.index} {' '.join(r.overrides)}: {r.error}")


def summarise(skip_finished: bool, runs, units, sweep_id, started_ms, interrupted) -> dict:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for key in sorted({r.tracking for r in runs if r.tracking}):
        try:
            found[key] = RunStore(key[0]).sweep_runs(key[1], sweep_id, started_ms)
        except Exception as exc:  # the summary must not hide the sweep's own outcome
            log.warning("could not read MLflow for the summary: %s", exc)
            found[key] = {}
    unit_of = {i: u for u in units for i in u.members}
    for r in runs:
        if r.status == "duplicate":
            continue
        if r.error:
            r.status, r.reason = "failed", f"invalid config: {r.error}"
            continue
        if r.done_run and skip_finished:
            r.status, r.reason, r.run_id = "skipped", "already FINISHED", r.done_run
            continue
        unit = unit_of.get(r.index)
        mlflow_run = found.get(r.tracking, {}).get(r.digest) if r.tracking else None
        result = unit.result if unit else None
        if result is not None and result.status != JobStatus.FAILED:
            value = result._return_value
            value = value[unit.members.index(r.index)] if isinstance(value, list) else value
            if isinstance(value, float) and math.isnan(value):  # kdkge.app.job_value: claimed by another process
                r.status, r.reason = "skipped", "being trained by another process (its claim was held)"
                continue
        if mlflow_run is not None:
            r.run_id = mlflow_run.info.run_id
            if mlflow_run.info.status == "FINISHED":
                r.status = "finished"
            else:
                r.status = "failed"
                r.reason = mlflow_run.data.tags.get("error") or mlflow_run.info.status
            continue
        if result is None:
            r.status, r.reason = "failed", "not run (sweep interrupted)" if interrupted else "not run"
        elif result.status == JobStatus.FAILED:
            r.status, r.reason = "failed", one_line(result._return_value)
        elif r.tracking and r.done_run is None:
            value = result._return_value
            if value is None or (isinstance(value, list) and value[unit.members.index(r.index)] is None):
                r.status = "failed"
                r.reason = f"error before training (see {Path(result.working_dir or '.') / 'train.log'})"
            else:  # finished by another process meanwhile: the app skipped it
                r.status, r.reason = "skipped", "FINISHED meanwhile"
        elif r.tracking:
            r.status, r.reason = "skipped", "already FINISHED"
        else:
            value = result._return_value
            ok = value is not None and not (isinstance(value, list) and value[unit.members.index(r.index)] is None)
            r.status, r.reason = ("finished", "not recorded (tracking disabled)") if ok else ("failed", "see the job log")
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "skipped", "failed", "duplicate")}
    return {
        "sweep_id": sweep_id,
        "interrupted": interrupted,
        "counts": counts,
        "runs": [
            {"index": r.index, "name": r.name, "overrides": r.overrides, "config_hash": r.digest,
             "status": r.status, "reason": r.reason, "run_id": r.run_id, "duplicate_of": r.duplicate_of,
             "stacked_with": len(unit_of[r.index].members) if r.index in unit_of else 0}
            for r in runs
        ],
    }


def print_summary(name, sweep_id, runs, summary, sweep_dir, interrupted) -> None:
    c = summary["counts"]
    total = len(runs) - c["duplicate"]
    print(f"\nsweep {sweep_id} {'INTERRUPTED' if interrupted else 'done'}: {total} runs: "
          f"{c['finished']} finished, {c['skipped']} skipped (already finished), {c['failed']} failed")
    for r in runs:
        if r.status == "failed":
            where = f" (MLflow run {r.run_id})" if r.run_id else ""
            print(f"  failed #{r.index} {r.name}: {r.reason}{where}")
    experiments = sorted({r.tracking[1] for r in runs if r.tracking})
    if experiments:
        print(f"MLflow: filter runs with  tags.sweep_id = '{sweep_id}'  (experiment{'s' if len(experiments) > 1 else ''} "
              f"{', '.join(experiments)}); runs finished by an earlier sweep keep that sweep's id")
    print(f"summary: {sweep_dir / 'sweep_summary.json'}")
