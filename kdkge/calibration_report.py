"""``python -m kdkge.calibration_report`` (``make calibration``): kept as the command it always was;
the report is :mod:`kdkge.reports.calibration` (``python -m kdkge.reports calibration``)."""

from __future__ import annotations

from .reports.calibration import main

if __name__ == "__main__":
    raise SystemExit(main())
