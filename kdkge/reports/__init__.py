"""The reports behind ``make tables`` (``python -m kdkge.reports``, also ``python -m kdkge.tables``),
one concern per module, in floors (a module imports only from the floors below it):

1. :mod:`.paper` — the paper's vocabulary, defined once: datasets, models, calibrations, sizes,
   settings, tables, and its printed numbers; :mod:`.guard` — ``make tables`` never loses a filled
   cell of a tracked results file; :mod:`.stats` — means, intervals and paired tests over seeds;
2. :mod:`.common` — the values of a cell, the protocol variants, the one number format;
3. :mod:`.runs` — the one loader: runs from the MLflow store or the run record, normalised;
4. :mod:`.tables` — cells, rows and Tables 2–6 from the runs; the size selection of Tables 2/3;
5. :mod:`.render` (Markdown, LaTeX, CSV of a table), :mod:`.claims` (the paper's claims),
   :mod:`.ablation` (loss, split, selection, seeds), :mod:`.row_groups` (the 2022 test MRR by row
   group, over :mod:`.ablation`'s seed frames), :mod:`.plots` (test MRR against |Θ|),
   :mod:`.seeds` (several seeds per cell), :mod:`.selection` (final vs best-validation epoch),
   :mod:`.calibration` (ECE/Brier of none/LS/LR), :mod:`.equal_budget` (KD models against the
   DistMult of the same |Θ|), :mod:`.pareto` (the MRR-|Θ| fronts);
6. :mod:`.reproduction` — ``REPRODUCTION.md``;
7. :mod:`.make` — what ``make tables`` writes, all or nothing; :mod:`.__main__` — the command line.

:mod:`kdkge.tables`, :mod:`kdkge.seeds` and :mod:`kdkge.calibration_report` are thin shims that
keep the old commands (and the names that used to live there).
"""
