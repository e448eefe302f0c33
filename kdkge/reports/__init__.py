"""The reports behind ``make tables`` (``python -m kdkge.tables``), one concern per module.

* :mod:`.common` — names, the paper's numbers, the protocol variants, the one number format;
* :mod:`.runs` — the one loader: runs from the MLflow store or the run record, normalised;
* :mod:`.build` — cells, rows and Tables 2–6 from the runs; the size selection of Tables 2/3;
* :mod:`.render` — Markdown, LaTeX and CSV of a table;
* :mod:`.claims` — the paper's claims, evaluated on a table of cells;
* :mod:`.ablation` — why the paper's numbers are what they are (loss, split, selection, seeds);
* :mod:`.reproduction` — ``REPRODUCTION.md``;
* :mod:`.plot` — test MRR against |Θ|;
* :mod:`.guard` — ``make tables`` never loses a filled cell of a tracked results file.

:mod:`kdkge.tables` is the driver and re-exports the names that used to live there.
"""
