"""One call from a run description to trained models and their metrics.

:func:`run` is the whole method of the paper as a Python API — data (Sec. 5.2, 6.3), model
(Eq. 6/8/9), loss (Eq. 2, Sec. 3.3), training (Sec. 5.1), filtered evaluation (Sec. 5.3) — for
one :class:`RunSpec` or several that can be stacked into one batched model.  The Hydra
entry point and MLflow tracking are thin layers over it (``kdkge.app``).

Example (Table 2, DistMult on UMLS)::

    from kdkge.experiment import RunSpec, run
    [result] = run([RunSpec(dataset="umls", model="distmult", dim=289)])
    print(result.metrics["test"]["mrr"], result.num_parameters)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from .checkpoints import TrainedModel, TrainingState, load_checkpoint, save_checkpoint
from .data import KnowledgeGraph, add_noise, load_dataset
from .data_2022 import load_dataset_2022
from .evaluation import RankingTask, evaluate_stacked, ranking_task
from .losses import build_loss
from .models import build_model
from .resources import available_memory, check_resources, memory_estimate
from .selection import BestValidation, EarlyStop
from .split_2022 import PaperTest
from .spec import (DTYPES, LEGACY_SPEC, MAX_SEED, PROTOCOL_LOSS, PROTOCOLS, SPLIT_NAMES, STRATEGIES, RunResult,
                   RunSpec)
from .strategies import build_strategy
from .training import resolve_device, train_epochs

#: The Python API: this module's own functions, and what it gathers from the modules below it.
__all__ = [
    "DTYPES", "LEGACY_SPEC", "MAX_SEED", "PROTOCOLS", "PROTOCOL_LOSS", "SPLIT_NAMES", "STRATEGIES",
    "RunResult", "RunSpec", "TrainedModel", "available_memory", "check_resources", "evaluate_model",
    "evaluation_tasks", "load_checkpoint", "memory_estimate", "prepare_data", "run", "run_one",
    "save_checkpoint", "unstack",
]


def prepare_data(spec: RunSpec) -> KnowledgeGraph:
    if spec.protocol == "paper_code":  # the authors' vocabulary, 2022 test split and noise
        return load_dataset_2022(spec.dataset, spec.noise_ratio, seed=spec.seed)
    kg = load_dataset(spec.dataset, unseen=spec.unseen)
    return add_noise(kg, spec.noise_ratio, seed=spec.seed) if spec.noise_ratio else kg


def evaluation_tasks(kg: KnowledgeGraph, splits=SPLIT_NAMES) -> dict[str, RankingTask]:
    """Ranking tasks per split; ``train`` ranks the clean training triples (Table 2's "on training set")."""
    triples = {"train": kg.clean_train, "valid": kg.valid, "test": kg.test}
    return {split: ranking_task(kg, triples[split]) for split in splits}


def unstack(model: torch.nn.Module, k: int) -> torch.nn.Module:
    """Configuration ``k`` of a stacked model as an ordinary model (:meth:`kdkge.models.base.KGEModel.unstack`)."""
    return model.unstack(k)


class _StackedRun:
    """One stacked group of runs being trained: its data, model, losses, evaluation tasks and records."""

    def __init__(self, specs: list[RunSpec], device: str, eval_splits: tuple[str, ...], eval_batch_size: int, patience: int):
        for spec in specs:
            spec.validate()
        if len({s.stack_key() for s in specs}) != 1:
            raise ValueError("stacked runs must agree on everything except calibration, alpha and (clean data) seed")
        self.specs, self.base, self.eval_batch_size = specs, specs[0], eval_batch_size
        self.device = resolve_device(device)
        self.kg = prepare_data(self.base)
        check_resources(specs, self.kg, self.device, eval_batch_size)  # before the model is built
        self.strategy = build_strategy(self.base)
        self.labels = self.strategy.labels(self.kg.training_triples())
        base, kg = self.base, self.kg
        self.model = build_model(base.model, kg.num_entities, kg.num_relations, base.dim, stack=len(specs), **base.model_options)
        self.model.reset_parameters([s.seed for s in specs])
        self.model.to(device=self.device, dtype=DTYPES[base.dtype])
        self.losses = [build_loss(s.calibration, s.alpha, s.loss, s.protocol) for s in specs]
        self.tasks = evaluation_tasks(kg, eval_splits)
        # paper_code: also the authors' 2022 test split, ranked their way (logged as paper_test_*)
        self.paper_task = PaperTest.of(kg) if kg.paper_test is not None and "test" in eval_splits else None
        self.history: list[list[float]] = []
        self.selection = BestValidation(len(specs), patience)
        self.last_epoch = 0

    def evaluate(self, model: torch.nn.Module | None = None) -> list[dict[str, dict[str, float]]]:
        return evaluate_model(self.model if model is None else model, self.tasks, self.paper_task, self.eval_batch_size)

    def epoch_end_hook(self, on_epoch, on_eval, extra_epoch_hook, eval_every: int, selecting: bool,
                       state: TrainingState | None, checkpoint_every: int) -> Callable:
        """What runs after every epoch, in this order: loss history and ``on_epoch``; every
        ``eval_every`` epochs (not the last: it is evaluated after training) an evaluation for
        ``on_eval`` and model selection; ``extra_epoch_hook``; early stopping; the training state
        every ``checkpoint_every`` epochs and after the last."""
        epochs = self.base.epochs

        def epoch_end(epoch, mean_losses, optimizer, generators):
            self.history.append(mean_losses)
            self.last_epoch = epoch
            if on_epoch is not None:
                on_epoch(epoch, mean_losses)
            stop = False
            if eval_every and epoch % eval_every == 0 and epoch != epochs:
                metrics = self.evaluate()
                if on_eval is not None:
                    on_eval(epoch, metrics)
                stop = selecting and self.selection.update(self.model, epoch, metrics)
            if extra_epoch_hook is not None:
                extra_epoch_hook(epoch, self.model, optimizer, generators)
            if stop:
                raise EarlyStop
            if state is not None and checkpoint_every and (epoch % checkpoint_every == 0 or epoch == epochs):
                state.save(epoch, self.model, optimizer, generators, self.history, self.selection.records)

        return epoch_end

    def results(self, final: list[dict[str, dict[str, float]]], seconds: float, selected: bool) -> list[RunResult]:
        """Each configuration's result: the final-epoch model and metrics, and with ``selected`` the best-validation ones."""
        results = []
        for k, spec in enumerate(self.specs):
            single = self.model.unstack(k).eval()
            result = RunResult(
                spec=spec, metrics=final[k], num_parameters=single.num_parameters, losses=[h[k] for h in self.history],
                model=single, kg=self.kg, seconds=seconds, last_epoch=self.last_epoch,
            )
            if selected:
                result.best_model = self.selection.best_model(k, single)
                result.best_epoch = self.selection.records[k]["epoch"]
                result.best_metrics = self.evaluate(result.best_model)[0]
            results.append(result)
        return results


def run(
    specs: list[RunSpec],
    *,
    device: str = "cpu",
    eval_splits: tuple[str, ...] = SPLIT_NAMES,
    eval_every: int = 0,
    eval_batch_size: int = 4096,
    progress: bool = True,
    on_epoch: Callable[[int, list[float]], None] | None = None,
    on_eval: Callable[[int, list[dict[str, dict[str, float]]]], None] | None = None,
    extra_epoch_hook: Callable | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    select_best: bool = False,
    patience: int = 0,
) -> list[RunResult]:
    """Train and evaluate ``specs`` (all with one :meth:`RunSpec.stack_key`) as one stacked model.

    ``on_epoch(epoch, losses)`` gets each configuration's mean loss; every ``eval_every`` epochs
    (and after the last) ``on_eval(epoch, metrics)`` gets each configuration's metrics per split.
    Results are identical to running each spec alone with the same seed.

    With ``checkpoint`` and ``checkpoint_every = N``, the full training state (weights, batch-norm
    statistics, Adam moments, batch-order generators, loss history) is written atomically every N
    epochs; ``resume=True`` continues from that file, reaching the same final metrics as an
    uninterrupted run.  A checkpoint of other specs is an error, never silently reused.

    Model selection: with ``select_best`` every evaluation (every ``eval_every`` epochs and the
    last) tracks each configuration's best validation MRR (never test) and keeps that model;
    results then carry ``best_epoch``, ``best_metrics`` and ``best_model`` beside the final-epoch
    ones (the paper's protocol).  ``patience = P > 0`` stops training after P evaluations without
    a better validation MRR (single configurations only: in a stack one configuration's stop
    would change the others' schedules).

    Before the model is built, :func:`check_resources` refuses a run that cannot fit.
    """
    if not specs:
        return []
    group = _StackedRun(specs, device, eval_splits, eval_batch_size, patience)
    selecting = select_best or bool(patience)
    if selecting and ("valid" not in group.tasks or not eval_every):
        raise ValueError("model selection needs the valid split and eval_every > 0")
    state = TrainingState(checkpoint, specs) if checkpoint is not None else None
    start_epoch, optimizer, generators = 0, None, None
    if resume and state is not None and state.path.is_file():
        start_epoch, optimizer, generators = state.load(group.model, group.device, group.history, group.selection.records)
    epoch_end = group.epoch_end_hook(on_epoch, on_eval, extra_epoch_hook, eval_every if (on_eval is not None or selecting) else 0,
                                     selecting, state, checkpoint_every)

    started = time.perf_counter()
    group.last_epoch = start_epoch
    try:
        train_epochs(
            group.model, group.labels, group.losses, epochs=group.base.epochs, batch_size=group.base.batch_size, lr=group.base.lr,
            seeds=[s.seed for s in specs], device=group.device, start_epoch=start_epoch, optimizer=optimizer,
            generators=generators, on_epoch_end=epoch_end, progress=progress, strategy=group.strategy,
        )
    except EarlyStop:
        pass
    final = group.evaluate()
    if on_eval is not None:
        on_eval(group.last_epoch, final)
    if selecting:
        group.selection.update(group.model, group.last_epoch, final)
    return group.results(final, time.perf_counter() - started, selecting)


def evaluate_model(model, tasks: dict[str, RankingTask], paper_task: PaperTest | None = None,
                   batch_size: int = 4096) -> list[dict[str, dict[str, float]]]:
    """Per stacked configuration: metrics per split, plus ``paper_test`` (the authors' 2022 test
    split and ranking) and its row groups (:class:`kdkge.split_2022.PaperTest`) when ``paper_task`` is given."""
    per_split = {split: evaluate_stacked(model, task, batch_size) for split, task in tasks.items()}
    out = [{split: values[k] for split, values in per_split.items()} for k in range(model.stack)]
    if paper_task is not None:
        for metrics, paper in zip(out, paper_task.evaluate(model), strict=True):
            metrics.update(paper)
    return out


def run_one(spec: RunSpec | None = None, **kwargs) -> RunResult:
    """Train and evaluate a single run: ``run_one(RunSpec(model="kd_distmult", dim=256))``."""
    return run([spec or RunSpec()], **kwargs)[0]
