"""``python -m kdkge.calibration_report`` (``make calibration``): kept as the command it always was;
the report is :mod:`kdkge.reports.calibration` (``python -m kdkge.reports calibration``), whose names
this module re-exports."""

from __future__ import annotations

from .reports.calibration import KEYS, ORDER, SPLITS, backfill, collect, main, markdown

__all__ = ["KEYS", "ORDER", "SPLITS", "backfill", "collect", "main", "markdown"]

if __name__ == "__main__":
    raise SystemExit(main())
