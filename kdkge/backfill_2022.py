"""Backfill the 2022 test split's row-group metrics and the NaN rows' lottery into finished runs.

``python -m kdkge.backfill_2022`` logs ``paper_test_{true,inverse,nan}_*`` and
``paper_test_nan_chance_mrr`` (:mod:`kdkge.split_2022`; runs trained since these metrics exist log
them themselves) and ``paper_test_nan_lottery_*`` (:mod:`kdkge.lottery_2022`, only logged here) into
every FINISHED ``paper_code`` run that lacks them, computed from the run's checkpoint artifact (as
``make calibration`` backfills calibration metrics).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile

from .checkpoints import load_checkpoint
from .experiment import prepare_data
from .mlflow_store import resolve_tracking_uri
from .paths import experiment_name
from .lottery_2022 import nan_lottery
from .schema import PAPER_TEST_LOTTERY_MEAN
from .split_2022 import GROUPS, breakdown
from .store import RunStore


def backfill(uri: str | None, experiments: list[str], force: bool = False) -> int:
    """Log :func:`breakdown` into every FINISHED paper_code run of ``experiments`` that lacks it."""
    from .tracking import MlflowTracker

    uri = resolve_tracking_uri(uri)
    store, tracker = RunStore(uri), None
    done = 0
    for name in experiments:
        runs = store.frame(name)
        if runs.empty or "tags.protocol" not in runs:
            continue
        runs = runs[(runs["status"] == "FINISHED") & (runs["tags.protocol"] == "paper_code")]
        for _, run in runs.iterrows():
            groups = force or math.isnan(run.get("metrics.paper_test_true_mrr", float("nan")))
            lottery = force or math.isnan(run.get(f"metrics.{PAPER_TEST_LOTTERY_MEAN}", float("nan")))
            if not (groups or lottery):
                continue
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    trained = load_checkpoint(store.download(run["run_id"], "checkpoint/model.pt", tmp))
            except Exception as error:  # noqa: BLE001 — a run without its checkpoint is reported, not fatal
                print(f"skip {run['run_id'][:8]}: no checkpoint ({type(error).__name__})", file=sys.stderr)
                continue
            kg = prepare_data(trained.spec)
            metrics = breakdown(trained.model, kg) if groups else {}
            if lottery:
                [drawn] = nan_lottery(trained.model, kg)
                metrics.update(drawn)
            tracker = tracker or MlflowTracker(uri, experiment=None)
            tracker.log_run_metrics(run["run_id"], metrics, step=int(trained.spec.epochs))
            done += 1
            print(f"{name} {run['run_id'][:8]} {run.get('tags.model')} d={run.get('tags.dim')} seed={run.get('tags.seed')}: "
                  + " ".join(f"{g}={metrics[f'paper_test_{g}_mrr']:.3f}" for g in GROUPS if groups)
                  + (f" nan-chance={metrics['paper_test_nan_chance_mrr']:.3f}" if groups else "")
                  + (f" nan-lottery q05/q50/q95={metrics['paper_test_nan_lottery_mrr_q05']:.3f}/"
                     f"{metrics['paper_test_nan_lottery_mrr_q50']:.3f}/{metrics['paper_test_nan_lottery_mrr_q95']:.3f}"
                     if lottery else ""))
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdkge.backfill_2022", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or the local store)")
    parser.add_argument("--experiments", nargs="+", default=[experiment_name(d) for d in ("umls", "kinship")])
    parser.add_argument("--force", action="store_true", help="recompute runs that already have the metrics")
    args = parser.parse_args(argv)
    done = backfill(args.tracking_uri, args.experiments, args.force)
    print(f"logged the 2022 row-group and NaN-lottery metrics into {done} run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
