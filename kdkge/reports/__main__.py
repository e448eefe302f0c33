"""``python -m kdkge.reports``: the reports' command line.

* ``python -m kdkge.reports [options]`` (= ``python -m kdkge.tables``, ``make tables``): Tables 2–6
  of both protocols, REPRODUCTION.md, the seeds, model-selection, equal-budget and Pareto reports
  (:mod:`.make`); ``--help`` lists the options;
* ``python -m kdkge.reports seeds [options]`` (= ``python -m kdkge.seeds``, ``make seeds``):
  ``results/seeds.md`` (:mod:`.seeds`);
* ``python -m kdkge.reports calibration [options]`` (= ``python -m kdkge.calibration_report``,
  ``make calibration``): ``results/calibration.md`` (:mod:`.calibration`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..paths import RECORD_DIR
from . import make
from .common import DEFAULT_EXPERIMENTS, LOG_EXPERIMENT, SELECTION_RULES
from .paper import TABLE_NUMBERS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kdkge.tables", description=make.__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Selection rules:\n" + "\n".join(f"  {k}: {v}." for k, v in SELECTION_RULES.items()))
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///<repo>/mlflow.db)")
    p.add_argument("--from-record", nargs="?", const=str(RECORD_DIR), default=None, metavar="FOLDER",
                   help="read the runs from the run record (default folder: %(const)s) instead of the store; "
                        "the default whenever the store has no kdkge runs")
    p.add_argument("--experiments", nargs="+", default=list(DEFAULT_EXPERIMENTS),
                   help="experiments to read runs from (default: %(default)s); runs are grouped by their dataset tag")
    p.add_argument("--out", default="results", help="output directory (default: %(default)s)")
    p.add_argument("--selection", choices=sorted(SELECTION_RULES), default="paper",
                   help="rule choosing each model's configuration in Tables 2 and 3 (default: %(default)s)")
    p.add_argument("--tables", nargs="+", type=int, choices=TABLE_NUMBERS, default=list(TABLE_NUMBERS),
                   help="which tables to build (default: all)")
    p.add_argument("--force", action="store_true",
                   help="write even if a git-tracked results file would be deleted or lose filled cells")
    p.add_argument("--log-experiment", default=LOG_EXPERIMENT,
                   help="MLflow experiment that receives the outputs as artifacts (default: %(default)s)")
    p.add_argument("--no-log", action="store_true", help="do not log the outputs to MLflow")
    return p.parse_args(argv)


def tables_main(argv: Sequence[str] | None = None) -> int:
    """``python -m kdkge.tables`` (``make tables``)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        make.make_tables(args.tracking_uri, args.experiments, args.out, args.selection, sorted(args.tables),
                         None if args.no_log else args.log_experiment,
                         source="record" if args.from_record else "auto",
                         record_dir=args.from_record or RECORD_DIR, force=args.force)
    except make.WouldLoseResults as exc:
        for line in exc.lines:
            print(f"would lose: {line}", file=sys.stderr)
        print(f"Nothing written: {exc}. Point --tracking-uri at the store that has them, use --from-record, "
              "or --force to write anyway.", file=sys.stderr)
        return make.EXIT_WOULD_LOSE
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch: ``seeds`` and ``calibration`` to their reports, anything else to :func:`tables_main`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "seeds":
        from .seeds import main as seeds_main

        return seeds_main(argv[1:])
    if argv and argv[0] == "calibration":
        from .calibration import main as calibration_main

        return calibration_main(argv[1:])
    return tables_main(argv[1:] if argv and argv[0] == "tables" else argv)


if __name__ == "__main__":
    sys.exit(main())
