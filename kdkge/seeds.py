"""``python -m kdkge.seeds`` (``make seeds``): kept as the command it always was; the report is
:mod:`kdkge.reports.seeds` (``python -m kdkge.reports seeds``) and the statistics
:mod:`kdkge.reports.stats`, whose names this module re-exports."""

from __future__ import annotations

from .reports.seeds import CELL, METRICS, PAIRS, fmt3, main, markdown, paired, runs_frame, summarise
from .reports.stats import (SIGN_FLOOR_NOTE, bootstrap_ci, compare_paired, paired_t_p, sign_test_floor,
                            sign_test_p)

__all__ = ["CELL", "METRICS", "PAIRS", "SIGN_FLOOR_NOTE", "bootstrap_ci", "compare_paired", "fmt3", "main",
           "markdown", "paired", "paired_t_p", "runs_frame", "sign_test_floor", "sign_test_p", "summarise"]

if __name__ == "__main__":
    raise SystemExit(main())
