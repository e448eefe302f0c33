"""``python eval.py``: evaluate a trained model again — from an MLflow run or a checkpoint file.

The model is loaded from ``run_id`` (its artifact ``checkpoint/model.pt``, or ``best_model.pt``,
downloaded from the run's store — a remote tracking server too) or from ``ckpt_path``; its data are
rebuilt from the checkpoint's :class:`~kdkge.experiment.RunSpec` exactly as training built them
(:func:`kdkge.experiment.prepare_data`: protocol, vocabulary, noise).  Then, per chosen split:

* filtered MRR and Hits@1/3/10 under the three tie policies (realistic — the reported one —,
  optimistic, pessimistic; :mod:`kdkge.evaluation`);
* calibration of σ(score) on valid and test: ECE, Brier score, top-1 ECE
  (:mod:`kdkge.calibration_metrics`, the bins training used);
* for ``protocol=paper_code`` checkpoints, the authors' 2022 test split ranked their way
  (``paper_test_*``, :func:`kdkge.experiment.evaluate_model`).

With ``run_id`` the numbers are compared with the ones the run logged (the final-epoch metrics, or
``best_*`` for ``checkpoint=best_model``) and the comparison is printed; ``log=true`` logs them to
the run as ``<prefix><name>`` (default ``eval/test_mrr``, ...), at the run's last epoch.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import tempfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from .calibration_metrics import calibration_metrics
from .data import BUILTIN
from .experiment import SPLIT_NAMES, TrainedModel, evaluate_model, evaluation_tasks, load_checkpoint, prepare_data
from .schema import RANK_METRICS, flat_metrics
from .split_2022 import PaperTest

CHECKPOINTS = ("model", "best_model")
TIES = ("realistic", "optimistic", "pessimistic")
CALIBRATION_KEYS = ("ece", "brier", "top1_ece")


class EvalError(ValueError):
    """A setting ``eval.py`` cannot run; the message is one line."""


def load_model(cfg: DictConfig, folder: Path) -> tuple[TrainedModel, str]:
    """The model ``cfg`` names (``ckpt_path``, else ``run_id``'s checkpoint artifact) and where it came from."""
    from .recorded import download

    device = str(cfg.device)
    if cfg.ckpt_path:
        path = Path(str(cfg.ckpt_path)).expanduser()
        if not path.is_file():
            raise EvalError(f"ckpt_path={cfg.ckpt_path}: no such file")
        return load_checkpoint(path, device), str(path)
    if str(cfg.checkpoint) not in CHECKPOINTS:
        raise EvalError(f"checkpoint={cfg.checkpoint!r}: use one of {', '.join(CHECKPOINTS)}")
    artifact = f"checkpoint/{cfg.checkpoint}.pt"
    path = download(cfg.tracking_uri or None, str(cfg.run_id), artifact, folder)
    return load_checkpoint(path, device), f"run {cfg.run_id}, artifact {artifact}"


def evaluate_trained(trained: TrainedModel, splits, *, dataset_path: str | None = None, batch_size: int = 4096,
                     calibration: bool = True, bins: int = 15) -> dict[str, float]:
    """Flat metrics (the names training logs) of ``trained`` on ``splits``, recomputed from its data."""
    spec = trained.spec
    if dataset_path:
        spec = dataclasses.replace(spec, dataset=str(Path(dataset_path).expanduser().resolve()))
    if spec.dataset not in BUILTIN and not Path(spec.dataset).is_dir():
        raise EvalError(f"the checkpoint's dataset folder {spec.dataset} does not exist here: give dataset_path=<folder>")
    kg = prepare_data(spec)
    if list(kg.entities) != list(trained.entities) or list(kg.relations) != list(trained.relations):
        raise EvalError("the dataset's entities or relations differ from the checkpoint's: not the data it was trained on")
    tasks = evaluation_tasks(kg, tuple(splits))
    paper_task = PaperTest.of(kg) if kg.paper_test is not None and "test" in splits else None
    [per_split] = evaluate_model(trained.model, tasks, paper_task, batch_size)
    metrics = flat_metrics(per_split)
    if calibration:
        for split in ("valid", "test"):
            if split in tasks:
                [values] = calibration_metrics(trained.model, tasks[split], bins=bins)
                metrics.update({f"{split}_{key}": values[key] for key in CALIBRATION_KEYS})
    return metrics


def report(metrics: dict[str, float], splits) -> str:
    """The metrics as text: one row per split and tie policy, then paper_test and calibration."""
    header = f"{'split':<6} {'ties':<11} {'MRR':>7} {'Hits@1':>7} {'Hits@3':>7} {'Hits@10':>7}"
    lines = [header, "-" * len(header)]
    for split in splits:
        for ties in TIES:
            prefix = f"{split}_" if ties == "realistic" else f"{split}_{ties}_"
            if f"{prefix}mrr" in metrics:
                lines.append(f"{split:<6} {ties:<11} " + " ".join(f"{metrics[prefix + m]:>7.4f}" for m in RANK_METRICS))
    if "paper_test_mrr" in metrics:
        lines.append(f"{'test22':<6} {'torch.sort':<11} " + " ".join(f"{metrics['paper_test_' + m]:>7.4f}" for m in RANK_METRICS)
                     + "   ← the authors' 2022 test split and ranking (paper_test_*)")
    calibrated = [s for s in ("valid", "test") if f"{s}_ece" in metrics]
    if calibrated:
        lines += ["", f"{'split':<6} {'ECE':>7} {'Brier':>7} {'top-1 ECE':>10}   (σ(score), kdkge.calibration_metrics)"]
        lines += [f"{s:<6} {metrics[s + '_ece']:>7.4f} {metrics[s + '_brier']:>7.4f} {metrics[s + '_top1_ece']:>10.4f}" for s in calibrated]
    return "\n".join(lines)


def compare(metrics: dict[str, float], logged: dict[str, float], logged_prefix: str = "") -> tuple[list[str], float]:
    """Names both hold, and the largest absolute difference between recomputed and logged values."""
    common = [k for k in metrics if logged_prefix + k in logged]
    worst = max((abs(metrics[k] - logged[logged_prefix + k]) for k in common), default=math.nan)
    return common, worst


def main(cfg: DictConfig) -> float | None:
    """``eval.py``'s task; one-line errors exit with status 2."""
    from .recorded import RecordedRunError, get_run
    from .tracking import TrackingUnreachableError

    try:
        if not cfg.run_id and not cfg.ckpt_path:
            raise EvalError("say what to evaluate: run_id=<MLflow run id> or ckpt_path=<checkpoint file>")
        splits = [str(s) for s in cfg.splits]
        unknown = [s for s in splits if s not in SPLIT_NAMES]
        if unknown or not splits:
            raise EvalError(f"splits={list(cfg.splits)}: choose among {', '.join(SPLIT_NAMES)}")
        if cfg.log and not cfg.run_id:
            raise EvalError("log=true needs run_id=<the run to log to>")
        if cfg.threads:
            torch.set_num_threads(int(cfg.threads))
        run = get_run(cfg.tracking_uri or None, str(cfg.run_id)) if cfg.run_id else None
        with tempfile.TemporaryDirectory(prefix="kdkge-eval-") as tmp:
            trained, source = load_model(cfg, Path(tmp))
        spec = trained.spec
        print(f"{source}: {spec.model} on {Path(spec.dataset).name}, d={spec.dim}, protocol {spec.protocol}, "
              f"{spec.epochs} epochs" + (f", MLflow run {run.info.run_name!r} ({run.info.status})" if run else ""))
        metrics = evaluate_trained(trained, splits, dataset_path=cfg.dataset_path, batch_size=int(cfg.batch_size),
                                   calibration=bool(cfg.calibrate), bins=int(cfg.bins))
        print(report(metrics, splits))
        if run is not None:
            logged = run.data.metrics
            prefix = "best_" if str(cfg.checkpoint) == "best_model" and not cfg.ckpt_path else ""
            common, worst = compare(metrics, logged, prefix)
            if common:
                verdict = "equal" if worst == 0 else f"max |difference| {worst:.3g}"
                print(f"against the run's logged {prefix or 'final-epoch '}metrics: {len(common)} compared, {verdict}"
                      + (f" (test MRR logged {logged[prefix + 'test_mrr']:.6f}, recomputed {metrics['test_mrr']:.6f})"
                         if "test_mrr" in common else ""))
            if cfg.log:
                from .tracking import log_metrics_to_run

                step = int(logged.get("last_epoch", spec.epochs))
                written = log_metrics_to_run(cfg.tracking_uri or None, str(cfg.run_id),
                                             {f"{cfg.prefix}{k}": v for k, v in metrics.items()}, step)
                print(f"logged {written} metrics to run {cfg.run_id} as {cfg.prefix}<name>")
        return metrics.get("test_mrr")
    except (EvalError, RecordedRunError, TrackingUnreachableError, FileNotFoundError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        sys.exit(2)
