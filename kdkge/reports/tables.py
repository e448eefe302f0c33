"""Tables 2–6 from the runs: cells, rows, the choice of runs, bold entries, and the sizes that
validation and test MRR would pick (Tables 2 and 3).

A :class:`Table` is built from the runs of one :class:`~kdkge.reports.common.Variant` (a protocol
with its default loss); its test rows show that variant's test split (``test_*`` or, for
paper_code, the authors' 2022 split ``paper_test_*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from ..schema import metric_key
from .common import EM_DASH, METRICS, PAPER_TEXT, SELECTION_RULES, VALUES, Variant, alpha_label
from .paper import (CALIBRATIONS, DATASET_LABELS, DATASETS, MODEL_LABELS, MODELS, NOISE, TABLE_NUMBERS, TITLES,
                    load_paper_tables, paper_dims)
from .runs import RunPool


@dataclass
class Cell:
    """One dataset's part of one row: up to five numbers and where they came from."""

    dataset: str
    dim: int | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    expected: tuple[str, ...] = ()  # values that should be there (missing ones are em dashes)
    run_id: str | None = None
    deviations: str = ""
    superseded: int = 0  # older FINISHED runs with the same config hash
    alternatives: int = 0  # other runs that fit this cell (other config hashes)
    wall_time_s: float | None = None
    stack_id: str = ""  # the job's, when the run was trained stacked with others ("" = a job of its own)
    n_avg: tuple[int, int] | None = None  # avg rows: (sizes present, sizes in the block)
    bold: set[str] = field(default_factory=set)
    paper: dict[str, float | None] = field(default_factory=dict)
    paper_dim: int | None = None

    @property
    def has_data(self) -> bool:
        return self.run_id is not None or bool(self.n_avg and self.n_avg[0])

    def missing(self) -> list[str]:
        return [k for k in self.expected if self.values.get(k) is None]


@dataclass
class Row:
    label: str
    model: str
    split: str = "test"  # test | train ("on training set")
    calibration: str = "none"
    alpha: float | None = None
    kind: str = "run"  # run | avg
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Table:
    number: int
    title: str
    noise: float
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    variant: Variant = PAPER_TEXT
    #: Tables 2/3: the sizes validation and test MRR pick over the size grid (:func:`size_choices`)
    sizes: list["SizeChoice"] = field(default_factory=list)

    @property
    def run_cells(self) -> list[Cell]:
        return [c for r in self.rows if r.kind == "run" for c in r.cells.values()]

    @property
    def has_runs(self) -> bool:
        return any(c.run_id for c in self.run_cells)

    def missing_counts(self) -> tuple[int, int, int, int]:
        """(missing values, expected values, cells without a run, cells) over run rows."""
        cells = self.run_cells
        missing = sum(len(c.missing()) for c in cells)
        expected = sum(len(c.expected) for c in cells)
        return missing, expected, sum(c.run_id is None for c in cells), len(cells)


_alpha_label = alpha_label


def candidates(runs: pd.DataFrame, dataset: str, model: str, calibration: str = "none",
               alpha: float | None = None, noise: float = 0.0, dim: int | None = None) -> pd.DataFrame:
    """Runs that fit a cell, best first: at the paper's settings first, then newest."""
    if runs.empty:
        return runs
    sel = runs[(runs.dataset == dataset) & (runs.model == model) & (runs.calibration == calibration)
               & ((runs.noise - noise).abs() < 1e-9)]
    sel = sel[sel["alpha"].isna()] if alpha is None else sel[(sel["alpha"] - alpha).abs() < 1e-9]
    if dim is not None:
        sel = sel[sel["dim"] == dim]
    order = sel.assign(_paper=sel["deviations"] == "").sort_values(
        ["_paper", "start_time"], ascending=[False, False], kind="stable")
    return order.drop(columns="_paper")


def select_best_valid(runs: pd.DataFrame, dataset: str, model: str, noise: float = 0.0) -> pd.Series | None:
    """The ``best-valid`` rule: best validation MRR over all sizes (paper-setting runs first)."""
    cands = candidates(runs, dataset, model, noise=noise)
    cands = cands[cands["valid_mrr"].notna()]
    if cands.empty:
        return None
    at_paper = cands[cands["deviations"] == ""]
    if not at_paper.empty:
        cands = at_paper
    # one run per size (the preferred one), then the best validation MRR; ties: fewer parameters
    per_dim = cands.drop_duplicates("dim", keep="first")
    best = per_dim.sort_values(["valid_mrr", "params"], ascending=[False, True], kind="stable")
    return best.iloc[0]


def _value(run: pd.Series, key: str, split: str) -> float | None:
    col = "params" if key == "params" else metric_key(split, key)
    v = run.get(col)
    return None if v is None or pd.isna(v) else float(v)


def _cell(dataset: str, run: pd.Series | None, split: str, show_params: bool,
          dim: int | None, alternatives: int = 0) -> Cell:
    """A cell from ``run``'s metrics of ``split`` (``test``, ``paper_test`` or ``train``)."""
    keys = VALUES if show_params else METRICS
    cell = Cell(dataset=dataset, dim=dim, expected=keys)
    if run is None:
        cell.values = {k: None for k in keys}
        return cell
    cell.dim = int(run["dim"])
    cell.values = {k: _value(run, k, split) for k in keys}
    cell.run_id = run["run_id"]
    cell.deviations = run["deviations"]
    cell.superseded = int(run["superseded"])
    cell.alternatives = alternatives
    cell.wall_time_s = None if pd.isna(run["wall_time_s"]) else float(run["wall_time_s"])
    cell.stack_id = str(run["stack_id"] or "")
    return cell


def _alpha_key(alpha) -> float | None:
    return None if alpha is None or pd.isna(alpha) else round(float(alpha), 6)


_PAPER_INDEX: dict[int, tuple[pd.DataFrame, dict]] = {}


def _paper_index(paper: pd.DataFrame) -> dict[tuple, list[dict]]:
    """The paper's rows grouped by (table, dataset, model, kind, split, calibration, α), in file order."""
    cached = _PAPER_INDEX.get(id(paper))
    if cached is not None and cached[0] is paper:
        return cached[1]
    index: dict[tuple, list[dict]] = {}
    for r in paper.to_dict("records"):
        key = (int(r["table"]), r["dataset"], r["model"], r["kind"], r["split"], r["calibration"], _alpha_key(r["alpha"]))
        index.setdefault(key, []).append({"dim": None if pd.isna(r["dim"]) else int(r["dim"]),
                                          **{k: None if pd.isna(r[k]) else float(r[k]) for k in VALUES}})
    _PAPER_INDEX.clear()  # one paper frame at a time
    _PAPER_INDEX[id(paper)] = (paper, index)
    return index


class TableBuilder:
    """Builds :class:`Table` objects from a :class:`RunPool` and the paper's data."""

    def __init__(self, pool: RunPool, paper: pd.DataFrame, selection: str = "paper", variant: Variant = PAPER_TEXT):
        """``pool``: the runs of ``variant`` only (:meth:`RunPool.of`); its test rows show ``variant.test_split``."""
        if selection not in SELECTION_RULES:
            raise ValueError(f"unknown selection rule {selection!r}: use one of {', '.join(SELECTION_RULES)}")
        self.pool, self.runs, self.paper, self.selection = pool, pool.runs, paper, selection
        self.variant = variant

    def _split(self, split: str) -> str:
        return self.variant.test_split if split == "test" else split

    # --- choosing runs --------------------------------------------------------------------
    def _pick(self, dataset, model, calibration="none", alpha=None, noise=0.0, dim=None):
        cands = candidates(self.runs, dataset, model, calibration, alpha, noise, dim)
        if cands.empty:
            return None, 0
        return cands.iloc[0], len(cands) - 1

    def _selected(self, table: int, dataset: str, model: str) -> tuple[pd.Series | None, int | None, int]:
        """Run, size and alternatives of a model's uncalibrated row in Table 2/3 under the rule."""
        if self.selection == "paper":
            dims = paper_dims(self.paper, table, dataset, model)
            dim = dims[0] if dims else None
            run, alternatives = self._pick(dataset, model, dim=dim) if dim else (None, 0)
            return run, dim, alternatives
        run = select_best_valid(self.runs, dataset, model)
        if run is None:
            return None, None, 0
        return run, int(run["dim"]), len(candidates(self.runs, dataset, model, dim=int(run["dim"]))) - 1

    # --- tables ---------------------------------------------------------------------------
    def build(self, number: int) -> Table:
        table = {2: self._table_2_3, 3: self._table_2_3}.get(number, self._sweep_table)(number)
        table.variant = self.variant
        if number in (2, 3):
            table.sizes = size_choices(self.runs, self.paper, number, self.variant.test_split)
        self._attach_paper(table)
        mark_best(table)
        table.notes = self._notes(table)
        return table

    def _table_2_3(self, number: int) -> Table:
        rows = []
        calibrations = CALIBRATIONS if number == 3 else CALIBRATIONS[:1]
        for model in MODELS:
            chosen = {ds: self._selected(number, ds, model) for ds in DATASETS}
            for calibration, alpha in calibrations:
                if calibration == "none":
                    label = MODEL_LABELS[model]
                    picks = {ds: (chosen[ds][0], chosen[ds][1], chosen[ds][2]) for ds in DATASETS}
                else:
                    label = f"with {calibration.upper()} α = {_alpha_label(alpha)}"
                    picks = {}
                    for ds in DATASETS:
                        dim = chosen[ds][1]
                        run, alt = self._pick(ds, model, calibration, alpha, dim=dim) if dim else (None, 0)
                        picks[ds] = (run, dim, alt)
                for split in ("test", "train"):
                    row = Row(label=label if split == "test" else "on training set", model=model, split=split,
                              calibration=calibration, alpha=alpha)
                    show_params = split == "test" and calibration == "none"
                    for ds, (run, dim, alt) in picks.items():
                        row.cells[ds] = _cell(ds, run, self._split(split), show_params, dim, alt)
                    rows.append(row)
        return Table(number, TITLES[number], NOISE[number], rows)

    def _sweep_table(self, number: int) -> Table:
        noise = NOISE[number]
        rows, blocks = [], {}
        for model in MODELS:
            dims = {ds: paper_dims(self.paper, number, ds, model) for ds in DATASETS}
            n = max(len(d) for d in dims.values())
            block = []
            for i in range(n):
                row = Row(label=MODEL_LABELS[model] if i == 0 else "", model=model)
                for ds in DATASETS:
                    dim = dims[ds][i] if i < len(dims[ds]) else None
                    run, alt = self._pick(ds, model, noise=noise, dim=dim) if dim else (None, 0)
                    row.cells[ds] = _cell(ds, run, self._split("test"), True, dim, alt)
                block.append(row)
            rows.extend(block)
            blocks[model] = block
        for model in MODELS:
            avg = Row(label=f"avg. {MODEL_LABELS[model]}", model=model, kind="avg")
            for ds in DATASETS:
                present = [r.cells[ds] for r in blocks[model] if r.cells[ds].run_id]
                cell = Cell(dataset=ds, n_avg=(len(present), len(blocks[model])))
                for key in VALUES:
                    vals = [c.values[key] for c in present if c.values.get(key) is not None]
                    cell.values[key] = sum(vals) / len(vals) if vals else None
                avg.cells[ds] = cell
            rows.append(avg)
        return Table(number, TITLES[number], noise, rows)

    # --- the paper's values and notes -----------------------------------------------------
    def _attach_paper(self, table: Table) -> None:
        """The paper's values of each cell (by table, dataset, model, kind, split, calibration, α; d in Tables 4–6)."""
        index = _paper_index(self.paper)
        for row in table.rows:
            for ds, cell in row.cells.items():
                hits = index.get((table.number, ds, row.model, row.kind, row.split, row.calibration,
                                  _alpha_key(row.alpha)), [])
                if row.kind == "run" and table.number >= 4:
                    hits = [h for h in hits if cell.dim is not None and h["dim"] == cell.dim]
                if not hits:
                    continue
                hit = hits[0]
                cell.paper = {k: hit[k] for k in VALUES}
                cell.paper_dim = hit["dim"]

    def _notes(self, table: Table) -> list[str]:
        notes = []
        missing, expected, missing_runs, cells = table.missing_counts()
        notes.append(f"Missing: {missing} of {expected} values ({EM_DASH}); "
                     f"{missing_runs} of {cells} cells (row × dataset) have no FINISHED run.")
        if table.number in (2, 3):
            notes.append(f"Selection rule `{self.selection}`: {SELECTION_RULES[self.selection]}.")
        else:
            dims = sorted({c.dim for c in table.run_cells if c.dim})
            notes.append(f"Sizes d ∈ {{{', '.join(map(str, dims))}}} (the paper's Table {table.number}); "
                         f"noise ratio {table.noise:g}; no calibration.")
        partial = [f"{DATASET_LABELS[ds]} {MODEL_LABELS[r.model]} {c.n_avg[0]}/{c.n_avg[1]}"
                   for r in table.rows if r.kind == "avg" for ds, c in r.cells.items()
                   if c.n_avg and c.n_avg[0] < c.n_avg[1]]
        if partial:
            notes.append("avg. rows average the sizes present only: " + ", ".join(partial) + ".")
        test_cells = [c for r in table.rows if r.kind == "run" and r.split == "test" for c in r.cells.values()]
        dup = [c for c in test_cells if c.superseded]
        if dup:
            notes.append(f"{len(dup)} cell(s) use the newest of several FINISHED runs with the same "
                         f"config_hash ({sum(c.superseded for c in dup)} older duplicate run(s) ignored).")
        alt = [c for c in test_cells if c.alternatives]
        if alt:
            notes.append(f"{len(alt)} cell(s) had other fitting runs with a different config "
                         f"(e.g. another seed); the run at the paper's settings, then the newest, was used "
                         f"({sum(c.alternatives for c in alt)} run(s) ignored).")
        off = [c for c in test_cells if c.run_id and c.deviations]
        if off:
            kinds = sorted({c.deviations for c in off})
            notes.append(f"† {len(off)} cell(s) come from runs NOT at the paper's settings "
                         f"(1000 epochs, lr 0.01, batch 1024, seed 1): {'; '.join(kinds)}.")
        if self.variant != PAPER_TEXT:
            notes.append(f"Runs: {self.variant.description}. The clean split's numbers of the same runs are in "
                         "REPRODUCTION.md.")
        return notes


def mark_best(table: Table) -> None:
    """Bold the best entry per column and dataset: highest metric, lowest |Θ|.

    Groups as in the paper: the test rows (never "on training set" rows) and, separately, the
    "avg." rows. |Θ| is bolded in Table 2 and among "avg." rows only, as in the paper. Values
    are compared at the printed precision, so ties are all bold.
    """
    groups = [[r for r in table.rows if r.kind == "run" and r.split == "test"],
              [r for r in table.rows if r.kind == "avg"]]
    for g, rows in enumerate(groups):
        for ds in DATASETS:
            for key in VALUES:
                if key == "params" and not (table.number == 2 or g == 1):
                    continue
                vals = [(r.cells[ds], r.cells[ds].values.get(key)) for r in rows if ds in r.cells]
                vals = [(c, round(v) if key == "params" else round(v, 3)) for c, v in vals if v is not None]
                if len(vals) < 2:
                    continue
                best = (min if key == "params" else max)(v for _, v in vals)
                for cell, v in vals:
                    if v == best:
                        cell.bold.add(key)


def build_tables(pool: RunPool, paper: pd.DataFrame | None = None, selection: str = "paper",
                 numbers: Sequence[int] = TABLE_NUMBERS, variant: Variant = PAPER_TEXT) -> dict[int, Table]:
    """Tables ``numbers`` built from the runs of ``variant`` in ``pool`` (all of them, with or without runs)."""
    builder = TableBuilder(pool.of(variant), load_paper_tables() if paper is None else paper, selection, variant)
    return {n: builder.build(n) for n in numbers}


# --------------------------------------------------------------------------- #
# Size selection (Tables 2 and 3)
# --------------------------------------------------------------------------- #


@dataclass
class SizeChoice:
    """For one dataset and model: the paper's d, and the d that validation / test MRR pick."""

    dataset: str
    model: str
    n_sizes: int = 0  # sizes with a run
    paper_dim: int | None = None
    paper_test: float | None = None  # our test MRR at the paper's d
    valid_dim: int | None = None
    valid_valid: float | None = None  # its validation MRR
    valid_test: float | None = None  # its test MRR
    test_dim: int | None = None
    test_test: float | None = None


def _float(v) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def size_choices(runs: pd.DataFrame, paper: pd.DataFrame, table: int, test_split: str = "test") -> list[SizeChoice]:
    """Per dataset and model, over every size with a clean, uncalibrated run at the paper's settings
    (the Table 2/3 sizes, the Table 5/6 sweep and the equal-budget sizes): the d of the best validation MRR and the d of
    the best test MRR (the paper's way, selecting on test), beside the paper's d. Ties: fewer
    parameters. ``test_split``: ``test`` or ``paper_test``."""
    out = []
    test_col = metric_key(test_split, "mrr")
    for ds in DATASETS:
        for model in MODELS:
            dims = paper_dims(paper, table, ds, model)
            choice = SizeChoice(ds, model, paper_dim=dims[0] if dims else None)
            cands = candidates(runs, ds, model)
            if not cands.empty:
                cands = cands[cands["deviations"] == ""].drop_duplicates("dim", keep="first")
            if cands.empty:
                out.append(choice)
                continue
            choice.n_sizes = len(cands)
            at_paper = cands[cands["dim"] == choice.paper_dim]
            if not at_paper.empty:
                choice.paper_test = _float(at_paper.iloc[0][test_col])
            for col, attr in (("valid_mrr", "valid"), (test_col, "test")):
                scored = cands[cands[col].notna()].sort_values([col, "params"], ascending=[False, True], kind="stable")
                if scored.empty:
                    continue
                best = scored.iloc[0]
                setattr(choice, f"{attr}_dim", int(best["dim"]))
                setattr(choice, f"{attr}_test", _float(best[test_col]))
                if attr == "valid":
                    choice.valid_valid = _float(best["valid_mrr"])
            out.append(choice)
    return out


