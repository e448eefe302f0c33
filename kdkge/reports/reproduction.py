"""``REPRODUCTION.md``: for every cell, the paper | ours under paper_code on the authors' 2022 split |
ours under paper_code on the clean split | ours under paper_text; the paper's claims under each
protocol; the sizes validation and test MRR pick; and why the paper's numbers are what they are.

The file holds no timestamp and no store path: the same runs give the same bytes, whether they
were read from the MLflow store or from the run record.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .ablation import render_ablation
from .agreement import render_agreement
from .row_groups import render_lottery, render_row_groups
from .tables import Table
from .claims import CLAIMS, _verdict_text, cells_frame
from .common import (DEFAULT_LOSS, PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT, SELECTION_RULES, VALUE_HEADERS, VALUES,
                     Variant, alpha_label, fmt_value)
from .paper import DATASET_LABELS, DATASETS, MODEL_LABELS
from .render import render_sizes
from .runs import RunPool

#: what the reports linked from the header hold
SEE_ALSO = {"equal_budget.md": "each KD model against the models of the same |Θ| over seeds",
            "pareto.md": "the fronts of test MRR against |Θ|"}
#: the columns of ours, in order
OURS = (PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT)
SHORT = {PAPER_CODE: "code 2022", PAPER_CODE_CLEAN: "code clean", PAPER_TEXT: "text"}


def _row_name(table: Table, idx: int) -> str:
    row = table.rows[idx]
    model = MODEL_LABELS[row.model]
    if row.kind == "avg":
        return f"avg. {model}"
    parts = [model]
    if row.calibration != "none":
        parts.append(f"{row.calibration.upper()} α={alpha_label(row.alpha)}")
    if row.split == "train":
        parts.append("on training set")
    return ", ".join(parts)


def _header() -> list[str]:
    head = ["Row", "Dataset", "d", "\\|Θ\\| paper", "code", "text"]
    for key in VALUES[1:]:
        head += [f"{VALUE_HEADERS[key]} paper", *(SHORT[v] for v in OURS)]
    return head + ["Runs"]


def _dim_text(cells: dict, row_kind: str) -> str:
    if row_kind == "avg":
        present = [f"{SHORT[v].split()[0]} {c.n_avg[0]}/{c.n_avg[1]}" for v, c in cells.items()
                   if v != PAPER_CODE_CLEAN and c.n_avg]
        return "avg. of " + ", ".join(present)
    dims = {SHORT[v].split()[0]: c.dim for v, c in cells.items() if c.run_id and v != PAPER_CODE_CLEAN}
    paper_dim = next((c.paper_dim for c in cells.values() if c.paper_dim), None)
    shown = set(dims.values()) | ({paper_dim} if paper_dim else set())
    if len(shown) <= 1:
        return str(next(iter(shown), ""))
    return ", ".join(f"{k} {d}" for k, d in dims.items()) + (f" (paper {paper_dim})" if paper_dim else "")


def _runs_text(cells: dict) -> str:
    out = []
    for v in (PAPER_CODE, PAPER_TEXT):
        c = cells[v]
        if c.run_id:
            out.append(f"{SHORT[v].split()[0]} `{c.run_id[:8]}`" + (f" † {c.deviations}" if c.deviations else ""))
    return ", ".join(out)


def _cell_entries(cells: dict, row) -> list[str]:
    any_cell = cells[PAPER_TEXT]
    paper = next((c.paper for c in cells.values() if c.paper), {})
    shows_params = "params" in any_cell.expected or row.kind == "avg"
    entries = []
    if shows_params:
        entries += [fmt_value("params", paper.get("params")) if paper else "n/a",
                    fmt_value("params", cells[PAPER_CODE].values.get("params")),
                    fmt_value("params", cells[PAPER_TEXT].values.get("params"))]
    else:
        entries += ["", "", ""]
    for key in VALUES[1:]:
        entries.append(fmt_value(key, paper.get(key)) if paper else "n/a")
        entries += [fmt_value(key, cells[v].values.get(key)) for v in OURS]
    return entries


def comparison_table(tables: dict[Variant, Table]) -> list[str]:
    """One line per (row, dataset) that any protocol has a run for."""
    head = _header()
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 4) + "---|"]
    ref = tables[PAPER_TEXT]
    for i, row in enumerate(ref.rows):
        for ds in DATASETS:
            cells = {v: tables[v].rows[i].cells[ds] for v in OURS}
            if not any(c.has_data for c in cells.values()):
                continue
            lines.append("| " + " | ".join([_row_name(ref, i), DATASET_LABELS[ds], _dim_text(cells, row.kind),
                                            *_cell_entries(cells, row), _runs_text(cells)]) + " |")
    return lines


def _counts(table: Table) -> str:
    missing, expected, missing_runs, cells = table.missing_counts()
    return f"{cells - missing_runs} of {cells} cells have a run, {missing} of {expected} values missing"


def _claims(number: int, tables: dict[Variant, Table], frames: dict, paper_frame: pd.DataFrame) -> list[str]:
    lines = ["", "Claims of the paper tested on these runs under each protocol (and on the paper's own numbers):", ""]
    for claim in (c for c in CLAIMS if c.table == number):
        lines.append(f"- *{claim.text}*")
        for v in OURS:
            ok, detail = claim.evaluate(frames[v])
            lines.append(f"  - {v.label}: {_verdict_text(ok)} ({detail})")
        pok, pdetail = claim.evaluate(paper_frame)
        lines.append(f"  - the paper's own numbers: {_verdict_text(pok)} ({pdetail})")
    for v in (PAPER_CODE, PAPER_TEXT):
        lines += [f"- Note ({v.protocol}): {note}" for note in tables[v].notes if note.startswith("†")]
    return lines


def seed_sigmas(pool: RunPool, paper: pd.DataFrame) -> dict[Variant, dict[tuple[str, str], float]]:
    """Per compared column, (dataset, model) → the sample std of test MRR over the seeds of Table 2's
    configuration (≥ 2 seeds; :func:`kdkge.reports.seeds.table2_seeds`)."""
    from .seeds import table2_seeds

    out: dict[Variant, dict[tuple[str, str], float]] = {}
    for v in OURS:
        cells, _ = table2_seeds(pool.of(v), paper, v)
        if cells.empty:
            continue
        rows = cells[(cells["split"] == "test") & (cells["n"] >= 2)].dropna(subset=["mrr_std"])
        out[v] = {(r.dataset, r.model): float(r.mrr_std) for r in rows.itertuples()}
    return out


def table_section(number: int, tables: dict[Variant, Table], frames: dict, paper_frame: pd.DataFrame,
                  sigmas: dict | None = None) -> list[str]:
    ref = tables[PAPER_TEXT]
    lines = ["", f"## Table {number}. {ref.title}", "",
             f"- paper_code: {_counts(tables[PAPER_CODE])} on the 2022 split ({_counts(tables[PAPER_CODE_CLEAN]).split(', ')[1]} "
             f"on the clean split); our table: [`table{number}{PAPER_CODE.suffix}.md`](table{number}{PAPER_CODE.suffix}.md).",
             f"- paper_text: {_counts(ref)}; our table: [`table{number}.md`](table{number}.md) "
             f"([LaTeX](table{number}.tex), [CSV](table{number}.csv)).", ""]
    lines += comparison_table(tables)
    lines += render_agreement(tables, sigmas)
    for v in OURS:
        sizes = render_sizes(tables[v])
        if sizes:
            lines += [sizes[0], sizes[1].replace("### Sizes chosen over the size grid",
                                                 f"### Table {number}: sizes chosen over the size grid ({v.label})")] + sizes[2:]
    lines += _claims(number, tables, frames, paper_frame)
    return lines


def _kinds_line(pool: RunPool, used: dict[Variant, set]) -> str:
    runs = pool.runs
    parts = []
    for protocol, loss in (("paper_code", "softmax_ce"), ("paper_code", "bce"), ("paper_text", "bce"), ("paper_text", "softmax_ce")):
        n = int(((runs.protocol == protocol) & (runs.loss == loss)).sum()) if not runs.empty else 0
        role = (f"{len(used.get(next(v for v in (PAPER_CODE, PAPER_TEXT) if v.protocol == protocol), set()))} used in the tables"
                if DEFAULT_LOSS[protocol] == loss else "the ablation only")
        parts.append(f"`{protocol}`/`{loss}` {n} ({role})")
    return "- FINISHED runs per protocol and loss (newest per config hash): " + "; ".join(parts) + "."


def _code_line(pool: RunPool) -> str:
    """The code commits that made the runs read (their ``git_commit`` tags), most runs first.

    Read from the runs, not from the checkout, so that the same runs give the same file at any commit."""
    runs = pool.runs
    commits = runs["code_commit"].replace("", "unknown").value_counts() if not runs.empty else pd.Series(dtype=int)
    order = sorted(commits.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = ", ".join(f"`{c}` ({n})" for c, n in order) or "none"
    return f"- Code that made these runs (their `git_commit` tags; runs per commit): {listed}"


def _deviation_lines(used_cells: dict[Variant, dict]) -> list[str]:
    lines = []
    for v, cells in used_cells.items():
        off = {rid: c.deviations for rid, c in cells.items() if c.deviations}
        if not off:
            continue
        lines += ["", f"{len(off)} of the {len(cells)} {v.protocol} runs used deviate from the paper's protocol (1000 "
                  "epochs, lr 0.01, batch size 1024, seed 1, 1vsAll); their cells are marked †.", ""]
        lines += [f"- {n} run(s): {dev}" for dev, n in pd.Series(list(off.values())).value_counts().items()]
    return lines


def job_wall_time(cells) -> tuple[float, int]:
    """Wall seconds of the jobs that trained ``cells``' runs, and how many jobs: a stacked job trains
    several runs at once and each of them logs the job's ``wall_time_s``, so a stack counts once."""
    jobs: dict[str, float] = {}
    for c in cells:
        if c.wall_time_s:
            jobs[c.stack_id or f"run:{c.run_id}"] = c.wall_time_s
    return sum(jobs.values()), len(jobs)


def render_reproduction(tables: dict[Variant, dict[int, Table]], skipped: dict[int, str], pool: RunPool,
                        paper: pd.DataFrame, *, selection: str, experiments: Sequence[str], command: str,
                        see_also: Sequence[str] = ()) -> str:
    """REPRODUCTION.md from the tables of every variant in :data:`OURS` (built with the same numbers).

    ``see_also``: other reports written beside it (file names), linked from the header."""
    used_cells = {v: {c.run_id: c for t in tables[v].values() for r in t.rows for c in r.cells.values() if c.run_id}
                  for v in (PAPER_CODE, PAPER_TEXT)}
    lines = [
        "# Reproduction of Tables 2–6", "",
        "Generated by `make tables` from the recorded runs (the MLflow store, or the run record `results/runs/`, "
        "which hold the same runs); do not edit by hand. For every cell: the paper's number (Demir, Lienen & Ngonga "
        "Ngomo 2022) | ours under protocol **paper_code** (what the authors' code ran: softmax CE, their 2022 "
        "vocabulary) on **their 2022 test split** ranked as their code did (`paper_test_*`, \"code 2022\") | the same "
        "runs on the **clean** test split (`test_*`, \"code clean\") | ours under protocol **paper_text** (the paper's "
        "text: BCE of Eq. 2, clean split, \"text\").", "",
        f"- Command: `{command}`",
        f"- Experiments: {', '.join(f'`{e}`' for e in experiments)}",
        _code_line(pool),
        f"- FINISHED runs read: {pool.n_fetched - pool.n_not_finished} (runs not FINISHED are ignored; the run record "
        f"holds none; `make tables` prints how many the store has); without model/dataset/dim tags (ignored): "
        f"{pool.n_untagged}; older duplicates with the same config_hash (ignored, newest used): "
        f"{sum(len(d[2]) for d in pool.duplicates)}.",
        _kinds_line(pool, {v: set(c) for v, c in used_cells.items()}),
        f"- Table 2/3 selection rule `{selection}`: {SELECTION_RULES[selection]}.",
        "- |Θ| is each run's logged `num_parameters`. paper_text's data have one entity and one relation fewer than "
        "the paper counts (paper_code keeps the authors' NaN entity and relation; see `kdkge/paper/README.md`).",
        "- Runs with the other loss of their protocol (paper_code with BCE, paper_text with softmax CE) are not in "
        "the tables; they feed the ablation at the end.",
    ]
    if see_also:
        lines.append("- The paper's parameter efficiency re-tested (issue 18): "
                     + ", ".join(f"[`{name}`]({name}) ({SEE_ALSO.get(name, 'see the file')})" for name in see_also) + ".")
    for v, cells in used_cells.items():
        wall, jobs = job_wall_time(cells.values())
        if wall:
            lines.append(f"- Training wall time of the {v.protocol} runs used: {wall / 3600:.2f} h in {jobs} jobs (sum of "
                         "their `wall_time_s`; the runs of a stacked job share its time and count once).")
    deviations = _deviation_lines(used_cells)
    lines += (["", "## Runs NOT at the paper's settings"] + deviations) if deviations else \
        ["", "All runs used are at the paper's settings (1000 epochs, lr 0.01, batch 1024, seed 1)."
         if any(used_cells.values()) else "No runs used."]
    if skipped:
        lines += ["", "## Tables without runs", ""] + [f"- Table {n}: {msg}" for n, msg in skipped.items()]
    frames = {v: cells_frame(tables[v]) for v in OURS}
    paper_frame = paper.assign(n_avg=None)
    sigmas = seed_sigmas(pool, paper)
    for n in tables[PAPER_TEXT]:
        if n in skipped:
            continue
        lines += table_section(n, {v: tables[v][n] for v in OURS}, frames, paper_frame, sigmas)
    lines += [""] + render_ablation(pool, paper)
    lines += [""] + render_row_groups(pool, paper)
    lines += [""] + render_lottery(pool, paper)
    return "\n".join(lines) + "\n"
