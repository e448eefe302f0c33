"""``python -m kdkge.seeds`` (``make seeds``): kept as the command it always was; the report is
:mod:`kdkge.reports.seeds` (``python -m kdkge.reports seeds`` is the same command)."""

from __future__ import annotations

from .reports.seeds import main

if __name__ == "__main__":
    raise SystemExit(main())
