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

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import KnowledgeGraph, add_noise, load_dataset, training_labels
from .data_2022 import load_dataset_2022
from .evaluation import RankingTask, evaluate_sorted_stacked, evaluate_stacked, paper_ranking_task, ranking_task
from .losses import LOSS_CLASSES, build_loss
from .models import available_models, build_model
from .safe_load import load_plain
from .training import make_optimizer, resolve_device, train_epochs

SPLIT_NAMES = ("train", "valid", "test")
STRATEGIES = ("1vsall", "kvsall", "negsamp")
#: Floating-point types a run can train in (``RunSpec.dtype``).  Initial weights are drawn in
#: float32 whatever the dtype, so a float64 run starts from the float32 run's weights.
DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: ``paper_code``: what the authors' code ran (softmax cross-entropy, their 2022 splits, noise and
#: evaluation; conf/protocol/paper_code.yaml lists every difference).  ``paper_text``: the paper's
#: text read literally (per-entity BCE of Eq. 2, clean splits) — every run recorded before
#: protocols existed.
PROTOCOLS = ("paper_code", "paper_text")
#: The loss each protocol trains with unless ``loss`` is set.
PROTOCOL_LOSS = {"paper_code": "softmax_ce", "paper_text": "bce"}
#: Largest seed: ``np.random.RandomState`` (the authors' noise, :mod:`kdkge.data_2022`) takes 32-bit seeds.
MAX_SEED = 2**32 - 1
#: Negative sampling draws k tails uniformly from |E| entities (with replacement); k above this
#: multiple of |E| only repeats them and is refused.
MAX_NEGATIVES_PER_ENTITY = 10
#: What a run description saved before a field existed meant (training states, checkpoints).
LEGACY_SPEC = {"protocol": "paper_text", "loss": "bce", "dtype": "float32"}


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run's result (defaults: the paper's Sec. 5.1 protocol)."""

    dataset: str = "umls"  # built-in name or folder path
    model: str = "distmult"  # a registered model name
    dim: int = 289  # embedding size d (KD models store √d-wide vectors)
    strategy: str = "1vsall"  # training labels: 1vsall | kvsall | negsamp (negative sampling)
    calibration: str = "none"  # none | ls (label smoothing) | lr (label relaxation)
    alpha: float | None = None  # α of ls / lr, in (0, 1)
    noise_ratio: float = 0.0  # Sec. 6.3: add noise_ratio·|train| random false triples
    epochs: int = 1000
    batch_size: int = 1024
    lr: float = 0.01
    seed: int = 1
    unseen: str = "skip"  # valid/test triples with entities/relations unseen in train: skip | error
    model_options: dict = field(default_factory=dict)  # extra model arguments, e.g. explicit=True
    num_negatives: int = 32  # negsamp: uniformly drawn negative tails per data point (k)
    sparse: bool = False  # negsamp: sparse embedding gradients + lazy Adam (kdkge.training.SparseAdam)
    dtype: str = "float32"  # float32 (the paper's) | float64 (exact comparisons of code paths; tests)
    protocol: str = "paper_code"  # paper_code (what the authors' code ran) | paper_text (the text of Eq. 2)
    loss: str | None = None  # bce | softmax_ce; None = the protocol's (PROTOCOL_LOSS)

    def __post_init__(self):
        if self.loss is None and self.protocol in PROTOCOL_LOSS:
            object.__setattr__(self, "loss", PROTOCOL_LOSS[self.protocol])

    def validate(self) -> None:
        """Raise ``ValueError`` with a one-line message for a setting that cannot run."""
        if self.model not in available_models():
            raise ValueError(f"unknown model {self.model!r}: available models are {', '.join(available_models())}")
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim <= 0:
            raise ValueError(f"dim={self.dim!r} must be a positive integer embedding size")
        try:
            with torch.device("meta"):  # shapes only: a huge dim must not allocate before the memory check
                build_model(self.model, 2, 2, self.dim, **self.model_options)  # e.g. Kronecker models need a square d
        except TypeError as exc:
            raise ValueError(f"model {self.model} does not take the options {self.model_options}: {exc}") from None
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0 and not (name == "epochs" and value == 0):
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr={self.lr!r} must be positive and finite (the Adam learning rate, e.g. lr=0.01)")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed={self.seed!r} must be an integer in [0, {MAX_SEED}] (numpy's RandomState, which draws "
                             "protocol=paper_code's noise, takes 32-bit seeds)")
        if not 0.0 <= self.noise_ratio < 1.0:
            raise ValueError(f"noise_ratio={self.noise_ratio!r} must lie in [0, 1)")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol={self.protocol!r} is unknown: use one of {', '.join(PROTOCOLS)}")
        if self.loss not in LOSS_CLASSES:
            raise ValueError(f"loss={self.loss!r} is unknown: use one of {', '.join(sorted(LOSS_CLASSES))}")
        if self.protocol == "paper_code" and self.strategy != "1vsall":
            raise ValueError(f"protocol=paper_code trains 1vsAll only (the authors' training_1vsall), not strategy={self.strategy}: "
                             "use strategy=1vsall, or protocol=paper_text")
        if self.loss == "softmax_ce" and self.strategy == "kvsall":
            raise ValueError("loss=softmax_ce needs one true tail per data point: use strategy=1vsall or negsamp, or loss=bce")
        build_loss(self.calibration, self.alpha, self.loss, self.protocol)  # checks calibration and alpha
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r} is unknown: use 1vsall, kvsall or negsamp")
        if self.strategy == "negsamp" and (not isinstance(self.num_negatives, int) or self.num_negatives < 1):
            raise ValueError(f"num_negatives={self.num_negatives!r} must be a positive integer (negatives per data point)")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not supported: use one of {', '.join(DTYPES)}")
        if self.sparse and self.strategy != "negsamp":
            raise ValueError("sparse gradients need negative sampling (strategy=negsamp): 1vsAll/KvsAll touch every entity")

    def stack_key(self) -> tuple:
        """Runs with equal keys share data, model shape and batches, so they can be stacked.

        Only calibration, α and — on clean data — the seed may differ (noise depends on the seed).
        """
        fields = dataclasses.asdict(self)
        fields.pop("calibration"), fields.pop("alpha")
        if self.noise_ratio == 0:
            fields.pop("seed")
        fields["model_options"] = tuple(sorted(self.model_options.items()))
        return tuple(sorted(fields.items()))


@dataclass
class RunResult:
    spec: RunSpec
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    num_parameters: int
    losses: list[float]  # mean training loss per epoch
    model: torch.nn.Module  # the trained (unstacked) model, in eval mode
    kg: KnowledgeGraph
    seconds: float  # wall time of the stacked group this run belonged to
    last_epoch: int = 0  # the last trained epoch (< spec.epochs after early stopping)
    best_epoch: int | None = None  # epoch of the best validation MRR (model selection), if tracked
    best_metrics: dict[str, dict[str, float]] | None = None  # metrics of the best-validation model
    best_model: torch.nn.Module | None = None  # the best-validation model, if tracked


class _EarlyStop(Exception):
    pass


def prepare_data(spec: RunSpec) -> KnowledgeGraph:
    if spec.protocol == "paper_code":  # the authors' vocabulary, 2022 test split and noise
        return load_dataset_2022(spec.dataset, spec.noise_ratio, seed=spec.seed)
    kg = load_dataset(spec.dataset, unseen=spec.unseen)
    return add_noise(kg, spec.noise_ratio, seed=spec.seed) if spec.noise_ratio else kg


def available_memory(device: torch.device) -> tuple[int, str] | None:
    """Bytes this run may still allocate on ``device`` and where that number comes from (None: unknown).

    CPU: ``MemAvailable`` of ``/proc/meminfo``, lowered to what a cgroup (container, SLURM job)
    limit leaves; CUDA: ``torch.cuda.mem_get_info``.
    """
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free), f"free memory of {device}"
    try:
        with open("/proc/meminfo") as handle:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in handle if line.split()[1:2]}
    except (OSError, ValueError, IndexError):
        return None
    if "MemAvailable" not in info:
        return None
    available, source = info["MemAvailable"], "MemAvailable in /proc/meminfo"
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        current = int(open("/sys/fs/cgroup/memory.current").read().strip())
        if limit != "max" and int(limit) - current < available:
            available, source = int(limit) - current, "the cgroup limit /sys/fs/cgroup/memory.max"
    except (OSError, ValueError):
        pass
    return available, source


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def memory_estimate(specs: list[RunSpec], kg: KnowledgeGraph, eval_batch_size: int = 4096) -> dict[str, int]:
    """Rough peak bytes of a (stacked) run, from shapes only (the model is built on the meta device).

    ``model``: weights, gradients and Adam's two moments, plus the kept best model (5 copies);
    ``training``: the ``[K, batch, |E|]`` score matrix of 1vsAll/KvsAll with its loss terms and
    gradient (4 copies) — or negative sampling's ``[K, batch, 1 + k]`` scores and gathered
    ``[batch, K, 1 + k, w]`` tail vectors — plus the batch's ``[K, batch, d]`` query vectors and the
    ``[|E|, K, d]`` tail vectors a Kronecker model expands (and their gradients); ``evaluation``: the ``[K, 4096, |E|]`` scores of a ranking batch
    with their comparison masks.  Peak = model + the larger of training and evaluation.
    """
    base = specs[0]
    k = len(specs)
    with torch.device("meta"):
        net = build_model(base.model, kg.num_entities, kg.num_relations, base.dim, stack=k, **base.model_options)
    size = DTYPES[base.dtype].itemsize
    params = sum(p.numel() for p in net.parameters())
    points = 2 * len(kg.train) if kg.noise_after_reciprocals is None else 2 * len(kg.train) + len(kg.noise_after_reciprocals)
    batch = min(base.batch_size, max(points, 1))
    entities = kg.num_entities
    expanded = 2 * entities * k * base.dim * size
    queries_d = 4 * k * batch * base.dim * size  # the batch's d-wide query vectors (head ∘ relation, or their Kronecker product)
    if base.strategy == "negsamp":
        candidates = 1 + base.num_negatives
        training = 4 * k * batch * candidates * size + 2 * batch * k * candidates * net.stored_width * size + queries_d
    else:
        training = 4 * k * batch * entities * size + expanded + queries_d
    queries = min(eval_batch_size, 2 * max(len(kg.valid), len(kg.test), len(kg.train)))
    evaluation = k * queries * entities * (size + 3) + expanded // 2
    return {"model": 5 * params * size, "training": training, "evaluation": evaluation,
            "total": 5 * params * size + max(training, evaluation), "parameters": params}


def check_resources(specs: list[RunSpec], kg: KnowledgeGraph, device: torch.device | str = "cpu",
                    eval_batch_size: int = 4096) -> None:
    """Refuse, with a one-line ``ValueError``, a run that cannot fit: too many negatives for the
    graph, or more memory than the device has (``KDKGE_MEMORY_CHECK=0`` skips the memory check)."""
    base = specs[0]
    if base.strategy == "negsamp" and base.num_negatives > MAX_NEGATIVES_PER_ENTITY * kg.num_entities:
        raise ValueError(
            f"strategy.num_negatives={base.num_negatives} is more than {MAX_NEGATIVES_PER_ENTITY}× the {kg.num_entities} "
            f"entities of {kg.name}: negatives are drawn uniformly from the entities (with replacement), so beyond |E| they "
            f"only repeat; use at most {kg.num_entities} (or strategy=1vsall, which scores all {kg.num_entities})"
        )
    if os.environ.get("KDKGE_MEMORY_CHECK", "1") == "0":
        return
    device = torch.device(device) if not isinstance(device, torch.device) else device
    available = available_memory(device)
    if available is None:
        return
    need = memory_estimate(specs, kg, eval_batch_size)
    free, source = available
    if need["total"] > free:
        stack = f" × {len(specs)} stacked" if len(specs) > 1 else ""
        raise ValueError(
            f"model={base.model} dim={base.dim} on {kg.name} ({kg.num_entities:,} entities, batch_size={base.batch_size}{stack}) "
            f"needs about {_gb(need['total'])} ({need['parameters']:,} parameters with gradients and Adam moments: "
            f"{_gb(need['model'])}; score matrices: {_gb(max(need['training'], need['evaluation']))}) but "
            f"{_gb(free)} are available ({source}): lower dim or batch_size (KDKGE_MEMORY_CHECK=0 skips this check)"
        )


def evaluation_tasks(kg: KnowledgeGraph, splits=SPLIT_NAMES) -> dict[str, RankingTask]:
    """Ranking tasks per split; ``train`` ranks the clean training triples (Table 2's "on training set")."""
    triples = {"train": kg.clean_train, "valid": kg.valid, "test": kg.test}
    return {split: ranking_task(kg, triples[split]) for split in splits}


def unstack(model: torch.nn.Module, k: int) -> torch.nn.Module:
    """Configuration ``k`` of a stacked model as an ordinary model (same weights and statistics)."""
    if model.stack == 1:
        return model
    single = build_model(model.name, model.num_entities, model.num_relations, model.dim, stack=1, **getattr(model, "options", {}))
    single.to(next(model.parameters()))  # same device and dtype before copying the weights
    state = {}
    for key, tensor in model.state_dict().items():
        if tensor.dim() == 3:  # embedding [N, K, w]
            state[key] = tensor[:, k : k + 1].clone()
        elif tensor.dim() == 1:  # batch-norm vector [K·w]
            state[key] = tensor.view(model.stack, -1)[k].clone()
        else:
            state[key] = tensor.clone()
    single.load_state_dict(state)
    return single


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
    for spec in specs:
        spec.validate()
    if len({s.stack_key() for s in specs}) != 1:
        raise ValueError("stacked runs must agree on everything except calibration, alpha and (clean data) seed")
    base = specs[0]
    torch_device = resolve_device(device)
    kg = prepare_data(base)
    check_resources(specs, kg, torch_device, eval_batch_size)  # before the model is built
    labels = training_labels(kg.training_triples(), base.strategy)
    model = build_model(base.model, kg.num_entities, kg.num_relations, base.dim, stack=len(specs), **base.model_options)
    model.options = dict(base.model_options)
    model.reset_parameters([s.seed for s in specs])
    model.to(device=torch_device, dtype=DTYPES[base.dtype])
    losses = [build_loss(s.calibration, s.alpha, s.loss, s.protocol) for s in specs]
    tasks = evaluation_tasks(kg, eval_splits)
    # paper_code: also the authors' 2022 test split, ranked their way (logged as paper_test_*)
    paper_task = paper_ranking_task(kg) if kg.paper_test is not None and "test" in eval_splits else None
    history: list[list[float]] = []

    if patience and len(specs) > 1:
        raise ValueError("early stopping (patience > 0) trains one configuration at a time: do not stack it")
    if (select_best or patience) and ("valid" not in tasks or not eval_every):
        raise ValueError("model selection needs the valid split and eval_every > 0")
    best = [{"mrr": -1.0, "epoch": None, "state": None, "waited": 0} for _ in specs]
    last_epoch = [0]  # mutable cell for the callbacks

    def evaluate_all() -> list[dict[str, dict[str, float]]]:
        return evaluate_model(model, tasks, paper_task, eval_batch_size)

    def track_best(epoch, metrics) -> bool:
        """Update the best-validation models; True when patience has run out."""
        for k, tracked in enumerate(best):
            mrr = metrics[k]["valid"]["mrr"]
            if mrr > tracked["mrr"]:
                tracked.update(mrr=mrr, epoch=epoch, waited=0)
                tracked["state"] = {key: v.detach().clone() for key, v in unstack(model, k).state_dict().items()}
            else:
                tracked["waited"] += 1
        return bool(patience) and all(t["waited"] >= patience for t in best)

    def epoch_end(epoch, mean_losses, optimizer, generators):
        history.append(mean_losses)
        last_epoch[0] = epoch
        if on_epoch is not None:
            on_epoch(epoch, mean_losses)
        stop = False
        if eval_every and epoch % eval_every == 0 and epoch != base.epochs and (on_eval is not None or select_best or patience):
            metrics = evaluate_all()
            if on_eval is not None:
                on_eval(epoch, metrics)
            if select_best or patience:
                stop = track_best(epoch, metrics)
        if extra_epoch_hook is not None:
            extra_epoch_hook(epoch, model, optimizer, generators)
        if stop:
            raise _EarlyStop

    spec_dicts = [dataclasses.asdict(s) for s in specs]
    start_epoch, optimizer, generators = 0, None, None
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        state = load_plain(checkpoint, "training state", map_location=torch_device)
        defaults = {**dataclasses.asdict(RunSpec()), **LEGACY_SPEC}  # what old states meant by missing fields
        if [{**defaults, **saved} for saved in state["specs"]] != spec_dicts:
            raise ValueError(f"checkpoint {checkpoint} belongs to other settings; delete it or set resume=false")
        model.load_state_dict(state["model"])
        optimizer = make_optimizer(model, base.lr, torch_device, sparse=base.sparse)
        optimizer.load_state_dict(state["optimizer"])
        generators = [torch.Generator().set_state(g) for g in state["generators"]]
        history.extend(state["history"])
        start_epoch = state["epoch"]
        for tracked, saved in zip(best, state.get("best", [])):
            tracked.update(saved)

    def save_training_state(epoch, optimizer_, generators_):
        path = Path(checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")  # per process: two writers never share a temp file
        torch.save(
            {
                "specs": spec_dicts, "epoch": epoch, "model": model.state_dict(),
                "optimizer": optimizer_.state_dict(), "generators": [g.get_state() for g in generators_],
                "history": history, "best": best,
            },
            tmp,
        )
        tmp.replace(path)  # atomic: a kill leaves either the old or the new checkpoint

    def epoch_end_with_checkpoint(epoch, mean_losses, optimizer_, generators_):
        epoch_end(epoch, mean_losses, optimizer_, generators_)
        if checkpoint is not None and checkpoint_every and (epoch % checkpoint_every == 0 or epoch == base.epochs):
            save_training_state(epoch, optimizer_, generators_)

    started = time.perf_counter()
    last_epoch[0] = start_epoch
    try:
        train_epochs(
            model, labels, losses,
            epochs=base.epochs, batch_size=base.batch_size, lr=base.lr,
            seeds=[s.seed for s in specs], device=torch_device,
            start_epoch=start_epoch, optimizer=optimizer, generators=generators,
            on_epoch_end=epoch_end_with_checkpoint, progress=progress,
            num_negatives=base.num_negatives if base.strategy == "negsamp" else 0, sparse=base.sparse,
        )
    except _EarlyStop:
        pass
    final = evaluate_all()
    if on_eval is not None:
        on_eval(last_epoch[0], final)
    if select_best or patience:
        track_best(last_epoch[0], final)
    seconds = time.perf_counter() - started
    results = []
    for k, spec in enumerate(specs):
        single = unstack(model, k).eval()
        result = RunResult(
            spec=spec, metrics=final[k], num_parameters=single.num_parameters,
            losses=[h[k] for h in history], model=single, kg=kg, seconds=seconds, last_epoch=last_epoch[0],
        )
        if select_best or patience:
            chosen = build_model(base.model, kg.num_entities, kg.num_relations, base.dim, **base.model_options)
            chosen.to(device=torch_device, dtype=DTYPES[base.dtype])
            chosen.load_state_dict(best[k]["state"])
            chosen.eval()
            result.best_epoch, result.best_model = best[k]["epoch"], chosen
            result.best_metrics = evaluate_model(chosen, tasks, paper_task, eval_batch_size)[0]
        results.append(result)
    return results


def evaluate_model(model, tasks: dict[str, RankingTask], paper_task: RankingTask | None = None,
                   batch_size: int = 4096) -> list[dict[str, dict[str, float]]]:
    """Per stacked configuration: metrics per split, plus ``paper_test`` (the authors' 2022 test
    split and ranking, :func:`kdkge.evaluation.evaluate_sorted_stacked`) when ``paper_task`` is given."""
    per_split = {split: evaluate_stacked(model, task, batch_size) for split, task in tasks.items()}
    if paper_task is not None:
        per_split["paper_test"] = evaluate_sorted_stacked(model, paper_task)
    return [{split: values[k] for split, values in per_split.items()} for k in range(model.stack)]


def run_one(spec: RunSpec | None = None, **kwargs) -> RunResult:
    """Train and evaluate a single run: ``run_one(RunSpec(model="kd_distmult", dim=256))``."""
    return run([spec or RunSpec()], **kwargs)[0]


def save_checkpoint(result_or_model, path: str | Path, spec: RunSpec | None = None, kg: KnowledgeGraph | None = None) -> Path:
    """Write a trained model with everything needed to reload it (atomic: temp file + rename)."""
    if isinstance(result_or_model, RunResult):
        model, spec, kg = result_or_model.model, result_or_model.spec, result_or_model.kg
    else:
        model = result_or_model
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": 1,
        "spec": dataclasses.asdict(spec),
        "entities": list(kg.entities),
        "relations": list(kg.relations),
        "num_relations": kg.num_relations,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


class TrainedModel:
    """A reloaded model with the names of its entities and relations, for predictions."""

    def __init__(self, model: torch.nn.Module, spec: RunSpec, entities: list[str], relations: list[str]):
        self.model, self.spec = model.eval(), spec
        self.entities, self.relations = list(entities), list(relations)
        self._entity_id = {e: i for i, e in enumerate(self.entities)}

    def relation_id(self, name: str) -> int:
        from .data import RECIPROCAL_SUFFIX

        if name.endswith(RECIPROCAL_SUFFIX) and name[: -len(RECIPROCAL_SUFFIX)] in self.relations:
            return self.relations.index(name[: -len(RECIPROCAL_SUFFIX)]) + len(self.relations)
        if name not in self.relations:
            raise KeyError(f"unknown relation {name!r}")
        return self.relations.index(name)

    @torch.no_grad()
    def predict(self, head: str, relation: str, k: int = 10) -> list[tuple[str, float]]:
        """Top-``k`` tails of ``(head, relation, ?)`` by score, as ``(entity name, score)``."""
        if head not in self._entity_id:
            raise KeyError(f"unknown entity {head!r}")
        device = next(self.model.parameters()).device
        h = torch.tensor([self._entity_id[head]], device=device)
        r = torch.tensor([self.relation_id(relation)], device=device)
        scores = self.model.score_all_tails(h, r)[0]
        top = torch.topk(scores, min(k, len(self.entities)))
        return [(self.entities[i], float(s)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


def load_checkpoint(path: str | Path, device: str = "cpu") -> TrainedModel:
    payload = load_plain(path, "checkpoint")  # weights_only=True: a file never runs code (kdkge.safe_load)
    spec = RunSpec(**{**LEGACY_SPEC, **payload["spec"]})
    num_relations = payload.get("num_relations", 2 * len(payload["relations"]))
    model = build_model(spec.model, len(payload["entities"]), num_relations, spec.dim, **spec.model_options)
    model.to(dtype=DTYPES[spec.dtype])
    model.load_state_dict(payload["state_dict"])
    return TrainedModel(model.to(resolve_device(device)), spec, payload["entities"], payload["relations"])
