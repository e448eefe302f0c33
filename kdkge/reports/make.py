"""Rebuild the paper's Tables 2–6 from the recorded runs, per protocol, side by side with the paper.

``python -m kdkge.reports`` (= ``python -m kdkge.tables``, ``make tables``) reads the training runs from the MLflow store
(``mlflow.search_runs`` via :func:`kdkge.tracking.find_runs`) or from the committed run record
``results/runs/`` (``--from-record``; the default when the store has no kdkge runs), through one
loader (:mod:`kdkge.reports.runs`), and writes under ``results/``:

* ``table{2..6}.md`` / ``.tex`` / ``.csv`` — protocol paper_text (the paper's text, BCE; every run
  recorded before protocols existed) in the paper's layout: UMLS and KINSHIP side by side, per
  row d, |Θ| (the logged ``num_parameters``), MRR, H@1/3/10; best entries bold; Tables 2 and 3
  add the sizes best validation MRR and best test MRR pick over the size grid;
* ``table{2..6}_paper_code.*`` — the same from protocol paper_code runs (what the authors' code
  ran, softmax CE), test rows on the authors' 2022 test split (``paper_test_*``);
* ``REPRODUCTION.md`` — per cell the paper | paper_code on the 2022 split | paper_code on the clean
  split | paper_text; the paper's claims under each protocol; an ablation of loss, split, epoch
  selection and seeds over Table 2's configurations (:mod:`kdkge.reports`);
* ``mrr_vs_params_{umls,kinship}{,_paper_code}.png`` — test MRR against |Θ| over the size sweep;
* ``table2_seeds{,_paper_code}.*`` — Table 2 over several seeds (:mod:`.seeds`);
* ``model_selection{,_paper_code}.{md,csv}`` — final vs best-validation epoch (:mod:`.selection`);
* ``equal_budget.{md,csv,tex}`` — each KD model of the equal-budget sweep against the models of
  the closest |Θ| over seeds, with paired tests, per protocol and split (:mod:`.equal_budget`);
* ``pareto.md`` and ``pareto_<dataset>_<protocol>.png`` — the fronts of test MRR against |Θ| of
  the three models, per dataset, protocol and split (:mod:`.pareto`).

Runs with the non-default loss of their protocol (ablation runs) never enter the tables.
Nothing is lost: a git-tracked file under the output folder is never deleted or replaced by one
with fewer filled cells unless ``--force`` (:mod:`kdkge.reports.guard`); the command then writes
nothing, prints one line per file and exits with status 3.

Everything written is also logged as artifacts of one run in the MLflow experiment
``kdkge-tables`` (``--log-experiment``; ``--no-log`` to skip; never when reading the record).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..paths import RECORD_DIR, REPO_ROOT
from . import equal_budget, guard, pareto, seeds, selection
from .common import DEFAULT_EXPERIMENTS, FILE_VARIANTS, LOG_EXPERIMENT, PAPER_CODE, PAPER_TEXT, SELECTION_RULES, Variant
from .paper import DATASETS, TABLE_NUMBERS, load_paper_tables
from .plots import plot_mrr_vs_params
from .render import render_latex, render_markdown, table_frame
from .reproduction import OURS, render_reproduction
from .runs import RunPool, fetch_runs, has_training_runs, normalise_runs
from .tables import Table, build_tables

log = logging.getLogger("kdkge.tables")
#: the exit status of ``make tables`` when it would lose filled cells (and wrote nothing)
EXIT_WOULD_LOSE = 3


class WouldLoseResults(RuntimeError):
    """Tracked results files would be deleted or lose filled cells; ``lines``: one per file."""

    def __init__(self, lines: list[str]):
        super().__init__(f"{len(lines)} tracked results file(s) would lose filled cells")
        self.lines = lines


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass
class Report:
    """What :func:`make_tables` did."""

    tables: dict[int, Table]  # the paper_text tables with runs (today's files)
    skipped: dict[int, str]
    written: list[Path]
    pool: RunPool
    logged_run_id: str | None = None
    source: str = "store"  # store | record
    by_variant: dict[Variant, dict[int, Table]] = field(default_factory=dict)
    deleted: list[Path] = field(default_factory=list)


def read_runs(tracking_uri: str, experiments: Sequence[str], source: str = "auto",
              record_dir: str | Path = RECORD_DIR) -> tuple[pd.DataFrame, str]:
    """The raw runs and where they came from: ``store``, ``record``, or ``auto`` (the store; the
    record when the store has no kdkge runs and the record has some)."""
    from ..runrecord import record_files

    if source == "record":
        return fetch_runs(None, experiments, record=record_dir), "record"
    raw = fetch_runs(tracking_uri, experiments)
    if source == "auto" and not has_training_runs(raw) and record_files(record_dir):
        recorded = fetch_runs(None, experiments, record=record_dir)
        if has_training_runs(recorded):
            print(f"The store {tracking_uri} has no kdkge runs: reading the run record {record_dir} "
                  f"({len(recorded)} runs) instead.")
            return recorded, "record"
    return raw, "store"


def _table_files(tables: dict[int, Table], variant: Variant, out: Path) -> dict[Path, bytes | None]:
    plan = {}
    for n, table in tables.items():
        stem = out / f"table{n}{variant.suffix}"
        if not table.has_runs:
            plan.update({stem.with_suffix(f".{ext}"): None for ext in ("md", "tex", "csv")})
            continue
        plan[stem.with_suffix(".md")] = render_markdown(table).encode("utf-8")
        plan[stem.with_suffix(".tex")] = render_latex(table).encode("utf-8")
        plan[stem.with_suffix(".csv")] = table_frame(table).to_csv(index=False).encode("utf-8")
    return plan


def _side_files(pool: RunPool, paper: pd.DataFrame, variant: Variant, out: Path) -> dict[Path, bytes | None]:
    """Table 2 over seeds, final vs best-validation epoch, and the plots of one variant."""
    sub = pool.of(variant)
    plan = {out / name: data for name, data in seeds.render(sub, paper, variant).items()}
    plan.update({out / name: data for name, data in selection.render(sub, variant).items()})
    for ds in DATASETS:
        plan[out / f"mrr_vs_params_{ds}{variant.suffix}.png"] = plot_mrr_vs_params(sub, paper, ds, variant)
    return plan


def _canonical_command(selection: str, numbers: Sequence[int]) -> str:
    cmd = "python -m kdkge.tables"
    if selection != "paper":
        cmd += f" --selection {selection}"
    if list(numbers) != list(TABLE_NUMBERS):
        cmd += " --tables " + " ".join(map(str, numbers))
    return cmd


def _print_summary(report: Report, plan: dict[Path, bytes | None], out: Path) -> None:
    pool = report.pool
    print(f"Runs read from the {report.source}: {pool.n_fetched}; not FINISHED (ignored): {pool.n_not_finished}.")
    for n, msg in report.skipped.items():
        print(f"Table {n}: {msg}.")
    for v in FILE_VARIANTS:
        for n, table in report.by_variant[v].items():
            if n in report.skipped:
                continue
            if table.has_runs:
                missing, expected, missing_runs, cells = table.missing_counts()
                print(f"Table {n} ({v.protocol}): {cells - missing_runs}/{cells} cells, {missing}/{expected} values "
                      f"missing -> {out}/table{n}{v.suffix}.*")
            else:
                print(f"Table {n} ({v.protocol}): no FINISHED runs; skipped.")
    skipped = sorted(p.name for p, data in plan.items() if data is None)
    if skipped:
        print(f"Not written (no runs for them): {', '.join(skipped)}.")


def _budget_files(pool: RunPool, out: Path, budgets: list[equal_budget.Budget] | None) -> dict[Path, bytes | None]:
    """The equal-budget comparison and the Pareto fronts, of every variant (protocol and split)."""
    pools = {v: pool.of(v) for v in OURS}
    budgets = equal_budget.planned_budgets() if budgets is None else budgets
    plan = {out / name: data for name, data in equal_budget.render(pools, budgets).items()}
    plan.update({out / name: data for name, data in pareto.render(pools).items()})
    return plan


def plan_outputs(pool: RunPool, paper: pd.DataFrame, selection: str, numbers: Sequence[int], out: Path,
                 experiments: Sequence[str], command: str,
                 budgets: list[equal_budget.Budget] | None = None) -> tuple[dict[Path, bytes | None], Report]:
    """Everything ``make tables`` would write (path → bytes) or delete (path → None), and the report.

    ``budgets``: those of the equal-budget report (default: :func:`equal_budget.planned_budgets`)."""
    by_variant = {v: build_tables(pool, paper, selection, numbers, v) for v in OURS}
    ref = {n: t for n, t in by_variant[PAPER_TEXT].items() if t.has_runs}
    any_runs = {n for v in (PAPER_TEXT, PAPER_CODE) for n, t in by_variant[v].items() if t.has_runs}
    skipped = {n: "no FINISHED runs for any of its cells under either protocol; skipped"
               for n in numbers if n not in any_runs}
    report = Report(ref, skipped, [], pool, by_variant=by_variant)
    if not any_runs:
        return {}, report
    plan: dict[Path, bytes | None] = {}
    for v in FILE_VARIANTS:
        plan.update(_table_files(by_variant[v], v, out))
        plan.update(_side_files(pool, paper, v, out))
    plan.update(_budget_files(pool, out, budgets))
    see_also = [name for name in ("equal_budget.md", "pareto.md") if plan.get(out / name) is not None]
    plan[out / "REPRODUCTION.md"] = render_reproduction(
        by_variant, skipped, pool, paper, selection=selection, experiments=experiments, command=command,
        see_also=see_also).encode("utf-8")
    return plan, report


def make_tables(tracking_uri: str | None = None, experiments: Sequence[str] = DEFAULT_EXPERIMENTS,
                out: str | Path = "results", selection: str = "paper", numbers: Sequence[int] = TABLE_NUMBERS,
                log_experiment: str | None = LOG_EXPERIMENT, command: str | None = None, *, source: str = "auto",
                record_dir: str | Path = RECORD_DIR, force: bool = False,
                budgets: list[equal_budget.Budget] | None = None) -> Report:
    """Build the tables of every protocol and REPRODUCTION.md from the runs; write them (and plots) to ``out``.

    ``source``: ``store``, ``record`` or ``auto`` (:func:`read_runs`). Tables without any run are
    skipped (and stale files of them removed); nothing at all is written when no table has runs.
    Raises :class:`WouldLoseResults` (writing nothing) if a git-tracked file would be deleted or
    lose filled cells, unless ``force``. ``log_experiment=None`` skips logging to MLflow.
    """
    from ..mlflow_store import resolve_tracking_uri

    if selection not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {selection!r}: use one of {', '.join(SELECTION_RULES)}")
    uri = resolve_tracking_uri(tracking_uri)
    out = Path(out)
    paper = load_paper_tables()
    raw, where = read_runs(uri, experiments, source, record_dir)
    pool = normalise_runs(raw)
    plan, report = plan_outputs(pool, paper, selection, numbers, out, experiments,
                                command or _canonical_command(selection, numbers), budgets)
    report.source = where
    if not plan:
        for n, msg in report.skipped.items():
            print(f"Table {n}: {msg}.")
        print(f"No runs to tabulate in {', '.join(experiments)} ({where}: "
              f"{record_dir if where == 'record' else uri}); nothing written.")
        return report
    lost = [] if force else guard.losses(plan, out)
    if lost:
        raise WouldLoseResults(lost)
    _print_summary(report, plan, out)
    report.written = guard.apply(plan)
    report.deleted = [p for p, data in plan.items() if data is None]
    print(f"Wrote {len(report.written)} files to {out}/ (REPRODUCTION.md: the paper vs both protocols, the claims, "
          "the ablation).")
    if log_experiment and where == "store":
        report.logged_run_id = _log_outputs(uri, log_experiment, report, selection, experiments)
        print(f"Logged them to MLflow experiment {log_experiment!r}, run {report.logged_run_id}.")
    return report


def _log_outputs(uri: str, experiment: str, report: Report, selection: str, experiments: Sequence[str]) -> str:
    """Log the written files as artifacts of one run of ``experiment`` (plots under ``plots/``)."""
    from ..tracking import MlflowTracker

    tracker = MlflowTracker(uri, experiment=experiment)
    tags = {"kind": "tables", "selection": selection, "source_experiments": ",".join(experiments),
            "tables": ",".join(map(str, report.tables)), "git_commit": _git_commit() or ""}
    used = {c.run_id for tables in report.by_variant.values() for t in tables.values() for c in t.run_cells if c.run_id}
    with tracker.run(f"tables-{selection}", tags=tags) as run_id:
        tracker.log_metrics({"runs_used": len(used)})
        for path in report.written:
            tracker.log_artifact(path, "plots" if path.suffix == ".png" else "tables")
    return run_id
