"""Recording one training run in MLflow: :class:`RunRecorder`, the same for a single and a stacked run.

The life of a run's record, in order: its tags (:func:`kdkge.identity.run_tags`) and params (the
resolved config) open the MLflow run; ``config.yaml`` and the dataset (:mod:`kdkge.run_inputs`) are
logged; during training a :class:`MetricLog` buffers the per-epoch loss and logs every evaluation;
at the end :meth:`RunRecorder.finish` logs the final numbers (rank metrics, ``num_parameters``,
``wall_time_s``, ``epochs_per_s``, calibration, ``best_*``), the plots and the checkpoint; on an
error :meth:`RunRecorder.fail` writes the buffered losses and ``error.txt`` before the run is ended
FAILED (KILLED on Ctrl-C).  :func:`kdkge.app.train_group` opens one recorder per configuration it
trains, whether it trains one or several as one stacked model.
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .calibration_metrics import calibration_metrics, reliability_diagram
from .config import dataset_name
from .data import resolve_dataset_path
from .experiment import RunResult, RunSpec, evaluation_tasks, save_checkpoint
from .interrupts import raise_if_signalled
from .paths import REPO_ROOT, experiment_name
from .plots import learning_curve, log_and_close
from .schema import RANK_METRICS, flat_metrics, with_grouped
from .tracking import MlflowTracker, NullTracker, Tracker

log = logging.getLogger(__name__)

#: The splits whose calibration (ECE, Brier, reliability diagram) a run records.
CALIBRATION_SPLITS = ("valid", "test")


# --------------------------------------------------------------------------- #
# The store
# --------------------------------------------------------------------------- #


def make_tracker(cfg: DictConfig) -> Tracker:
    """:class:`MlflowTracker` on ``tracking.uri`` (or the default store), or :class:`NullTracker`."""
    if not cfg.tracking.enabled:
        return NullTracker()
    experiment = cfg.tracking.experiment or experiment_name(dataset_name(cfg))
    return MlflowTracker(cfg.tracking.uri or None, experiment=str(experiment))


def store_key(tracker: Tracker) -> str:
    """Where a tracker records (:attr:`kdkge.tracking.Tracker.store_key`): claims and training states are per store."""
    return tracker.store_key


def finished_metrics(tracker: Tracker, run_id: str) -> dict[str, float]:
    """The metrics of a recorded run (:meth:`kdkge.tracking.Tracker.finished_metrics`; empty without a store)."""
    return tracker.finished_metrics(run_id)


def ui_hint(tracker: Tracker, run_id: str) -> list[str]:
    """Lines saying where a run is: tracking URI, experiment, run id and the UI address."""
    if not tracker.recording:
        return ["MLflow: not recorded (tracking=none)"]
    path = f"/#/experiments/{tracker.experiment_id}/runs/{run_id}"
    uri = tracker.tracking_uri
    lines = [
        f"MLflow run {run_id} in experiment {tracker.experiment_name!r} (id {tracker.experiment_id})",
        f"  tracking URI: {uri}",
    ]
    if uri.startswith(("http://", "https://")):
        lines.append(f"  open: {uri.rstrip('/')}{path}")
    elif uri == f"sqlite:///{REPO_ROOT / 'mlflow.db'}":
        lines.append(f"  browse: make ui, then open http://127.0.0.1:5000{path}")
    else:
        lines.append(f"  browse: mlflow ui --backend-store-uri {uri}, then open http://127.0.0.1:5000{path}")
    return lines


def results_table(metrics: Mapping[str, float], num_parameters: int | None = None) -> str:
    """Train/valid/test MRR and Hits@1/3/10 as a text table (from flat metric names)."""
    header = f"{'split':<6} {'MRR':>7} {'Hits@1':>7} {'Hits@3':>7} {'Hits@10':>7}"
    lines = [header, "-" * len(header)]
    for split in ("train", "valid", "test", "paper_test"):
        if f"{split}_mrr" not in metrics:
            continue
        values = [metrics.get(f"{split}_{m}", math.nan) for m in RANK_METRICS]
        label = "test 2022 (the authors' split and ranking)" if split == "paper_test" else split
        lines.append(f"{split if split != 'paper_test' else 'test22':<6} " + " ".join(f"{v:>7.3f}" for v in values)
                     + ("   ← " + label if split == "paper_test" else ""))
    if num_parameters is not None:
        lines.append(f"parameters: {int(num_parameters):,}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# During training
# --------------------------------------------------------------------------- #


class MetricLog:
    """Buffers per-epoch losses and writes them in batches; collects curves and timings."""

    def __init__(self, tracker: Tracker, flush_every: int, epochs: int):
        self.tracker, self.flush_every, self.epochs = tracker, flush_every, epochs
        self.pending: list[tuple[int, dict[str, float], int]] = []
        self.losses: list[tuple[int, float]] = []
        self.valid_mrr: list[tuple[int, float]] = []
        self.started = time.perf_counter()
        self.first_epoch_end: float | None = None
        self.last_epoch_end: float | None = None
        self.eval_seconds = 0.0  # time spent in intermediate evaluations (not training)
        self.epochs_done = 0

    def on_epoch(self, epoch: int, losses: list[float]) -> None:
        self.losses.append((epoch, losses[0]))
        self.pending.append((epoch, with_grouped({"loss": losses[0]}), int(time.time() * 1000)))
        if len(self.pending) >= self.flush_every:
            self.flush()
        self.epochs_done = epoch
        self.last_epoch_end = time.perf_counter()
        if self.first_epoch_end is None:
            self.first_epoch_end = self.last_epoch_end
        raise_if_signalled()  # a SIGTERM/SIGINT whose KeyboardInterrupt was swallowed: stop after this epoch

    def on_eval(self, epoch: int, metrics: list[dict[str, dict[str, float]]]) -> None:
        flat = flat_metrics(metrics[0])
        if "valid_mrr" in flat:
            self.valid_mrr.append((epoch, flat["valid_mrr"]))
        self.flush()
        self.tracker.log_metrics(with_grouped(flat), step=epoch)
        if epoch < self.epochs and self.last_epoch_end is not None:
            # an intermediate evaluation runs between this epoch's end and the next epoch's start
            self.eval_seconds += time.perf_counter() - self.last_epoch_end

    def flush(self) -> None:
        if self.pending:
            rows, self.pending = self.pending, []
            self.tracker.log_metric_steps(rows)

    def epochs_per_s(self) -> float | None:
        """Training speed from the end of the first to the end of the last epoch, evaluations excluded.

        (With a single epoch: that epoch including the setup of data and model.)
        """
        if self.first_epoch_end is None:
            return None
        if self.epochs_done <= 1:
            return self.epochs_done / max(self.first_epoch_end - self.started, 1e-9)
        seconds = self.last_epoch_end - self.first_epoch_end - self.eval_seconds
        return (self.epochs_done - 1) / max(seconds, 1e-9)


# --------------------------------------------------------------------------- #
# One run's record
# --------------------------------------------------------------------------- #


class RunRecorder:
    """The MLflow record of one configuration's training: open, log during training, finish or fail.

    ``tags`` are the run's complete tags; ``on_eval(epoch, flat_metrics)`` is the caller's hook after
    every evaluation (an exception it raises ends the run FAILED).  Use :meth:`open` inside an
    :class:`contextlib.ExitStack` that also covers the training: leaving it ends the MLflow run
    (FINISHED, or FAILED/KILLED when an exception leaves it).
    """

    def __init__(self, cfg: DictConfig, spec: RunSpec, name: str, tracker: Tracker, tags: Mapping[str, str],
                 on_eval: Callable[[int, dict[str, float]], None] | None = None):
        self.cfg, self.spec, self.name, self.tracker, self.tags = cfg, spec, name, tracker, dict(tags)
        self.hook = on_eval
        self.run_id: str | None = None
        self.tmp: Path | None = None
        self.log: MetricLog | None = None

    def open(self, exits: contextlib.ExitStack) -> "RunRecorder":
        """Start the MLflow run (tags, params), log ``config.yaml`` and the dataset, start the metric log."""
        cfg, tracker = self.cfg, self.tracker
        self.run_id = exits.enter_context(tracker.run(self.name, tags=self.tags, params=OmegaConf.to_container(cfg, resolve=True)))
        self.tmp = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="kdkge-")))
        config_file = self.tmp / "config.yaml"
        config_file.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        tracker.log_artifact(config_file)
        self._log_dataset()
        self.log = MetricLog(tracker, int(cfg.tracking.log_every), self.spec.epochs)
        return self

    def _log_dataset(self) -> None:
        """The dataset as the run's MLflow dataset input (:mod:`kdkge.run_inputs`)."""
        if isinstance(self.tracker, MlflowTracker):
            from .run_inputs import log_dataset

            spec = self.spec
            log_dataset(self.tracker, dataset_name(self.cfg), resolve_dataset_path(spec.dataset), protocol=spec.protocol,
                        noise_ratio=spec.noise_ratio, seed=spec.seed)

    def on_epoch(self, epoch: int, loss: float) -> None:
        self.log.on_epoch(epoch, [loss])

    def on_eval(self, epoch: int, metrics: dict[str, dict[str, float]]) -> None:
        self.log.on_eval(epoch, [metrics])
        if self.hook is not None:
            self.hook(epoch, flat_metrics(metrics))

    def finish(self, result: RunResult, wall: float) -> dict[str, float]:
        """Log a trained run's final numbers and artifacts; return its metrics.

        Besides the rank metrics: ``num_parameters``, ``wall_time_s``, ``epochs_per_s``, the
        calibration of σ(score) on valid and test (``{split}_ece``, ``{split}_brier``,
        ``{split}_top1_ece``, see :mod:`kdkge.calibration_metrics`), the learning curve, a reliability
        diagram per split, and the checkpoint.
        """
        tracker, log_ = self.tracker, self.log
        log_.flush()
        metrics = flat_metrics(result.metrics)
        metrics["num_parameters"] = float(result.num_parameters)
        metrics["wall_time_s"] = wall
        speed = log_.epochs_per_s()
        if speed is not None:
            metrics["epochs_per_s"] = speed
        self._record_calibration(result, metrics)
        tracker.log_metrics(
            {k: v for k, v in metrics.items() if k in ("num_parameters", "wall_time_s", "epochs_per_s") or k.endswith(("_ece", "_brier"))},
            step=result.spec.epochs,
        )
        metrics["last_epoch"] = float(result.last_epoch)
        if result.best_metrics is not None:  # model selection: the paper's final-epoch numbers stay the main ones
            metrics["best_epoch"] = float(result.best_epoch)
            metrics.update({f"best_{key}": value for key, value in flat_metrics(result.best_metrics).items()})
        tracker.log_metrics({k: v for k, v in metrics.items() if k.startswith("best_") or k == "last_epoch"}, step=result.last_epoch)
        fig = learning_curve(log_.losses, log_.valid_mrr, f"{self.name} (test MRR {metrics['test_mrr']:.3f})")
        log_and_close(tracker, fig, "plots/learning_curve.png")
        if self.cfg.checkpoint and tracker.recording:
            tracker.log_artifact(save_checkpoint(result, self.tmp / "model.pt"), "checkpoint")
            if result.best_model is not None:
                tracker.log_artifact(save_checkpoint(result.best_model, self.tmp / "best_model.pt", result.spec, result.kg), "checkpoint")
        return metrics

    def _record_calibration(self, result: RunResult, metrics: dict[str, float]) -> None:
        """``{split}_ece``, ``{split}_brier``, ``{split}_top1_ece`` into ``metrics``; the reliability diagrams logged."""
        for split, task in evaluation_tasks(result.kg, CALIBRATION_SPLITS).items():
            [calibration] = calibration_metrics(result.model, task, bins=15)
            for key in ("ece", "brier", "top1_ece"):
                metrics[f"{split}_{key}"] = calibration[key]
            log_and_close(self.tracker, reliability_diagram(calibration["reliability"], f"{self.name}: {split}"),
                          f"plots/reliability_{split}.png")

    def fail(self, exc: BaseException) -> None:
        """Best effort: write the buffered losses and the traceback before the run is ended FAILED/KILLED."""
        if self.log is None or self.tmp is None:
            return
        try:
            self.log.flush()
            error_file = self.tmp / "error.txt"
            error_file.write_text("".join(traceback.format_exception(exc)))
            self.tracker.log_artifact(error_file)
        except Exception as inner:  # never hide the original error
            log.warning("could not record the failure in MLflow: %s", inner)
