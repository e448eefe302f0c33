"""``python -m kdkge.tables`` (``make tables``): kept as the command it always was.

The reports live in :mod:`kdkge.reports` (``python -m kdkge.reports`` is the same command); this
module only re-exports the names that used to live here and runs its command line.
"""

from __future__ import annotations

import sys

from .reports.__main__ import parse_args, tables_main as main
from .reports.claims import CLAIMS, Claim, cells_frame
from .reports.common import (DEFAULT_EXPERIMENTS, DEFAULT_LOSS, EM_DASH, FILE_VARIANTS, LOG_EXPERIMENT,
                             METRICS, PAPER_CODE, PAPER_CODE_CLEAN, PAPER_TEXT, SELECTION_RULES, VALUE_HEADERS, VALUES,
                             Variant, fmt_delta, fmt_metric, fmt_params, fmt_value)
from .reports.make import EXIT_WOULD_LOSE, Report, WouldLoseResults, make_tables, plan_outputs, read_runs
from .reports.paper import (CALIBRATIONS, DATASET_LABELS, DATASETS, MODEL_LABELS, MODELS, NOISE,
                            PAPER_SETTINGS, PAPER_STRATEGY, TABLE_NUMBERS, TITLES, load_paper_tables, paper_dims)
from .reports.plots import plot_mrr_vs_params
from .reports.render import CSV_COLUMNS, render_latex, render_markdown, table_frame
from .reports.runs import RUN_COLUMNS, RunPool, fetch_runs, has_training_runs, load_runs, normalise_runs
from .reports.tables import (Cell, Row, SizeChoice, Table, TableBuilder, build_tables, candidates,
                             mark_best, select_best_valid, size_choices)

__all__ = ["parse_args", "main", "CLAIMS", "Claim", "cells_frame", "DEFAULT_EXPERIMENTS",
           "DEFAULT_LOSS", "EM_DASH", "FILE_VARIANTS", "LOG_EXPERIMENT", "METRICS", "PAPER_CODE", "PAPER_CODE_CLEAN",
           "PAPER_TEXT", "SELECTION_RULES", "VALUE_HEADERS", "VALUES", "Variant", "fmt_delta", "fmt_metric",
           "fmt_params", "fmt_value", "EXIT_WOULD_LOSE", "Report", "WouldLoseResults", "make_tables", "plan_outputs",
           "read_runs", "CALIBRATIONS", "DATASET_LABELS", "DATASETS", "MODEL_LABELS", "MODELS", "NOISE",
           "PAPER_SETTINGS", "PAPER_STRATEGY", "TABLE_NUMBERS", "TITLES", "load_paper_tables", "paper_dims",
           "plot_mrr_vs_params", "CSV_COLUMNS", "render_latex", "render_markdown", "table_frame", "RUN_COLUMNS",
           "RunPool", "fetch_runs", "has_training_runs", "load_runs", "normalise_runs", "Cell", "Row", "SizeChoice",
           "Table", "TableBuilder", "build_tables", "candidates", "mark_best", "select_best_valid", "size_choices"]

if __name__ == "__main__":
    sys.exit(main())
