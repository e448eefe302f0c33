"""Will a run fit?  Rough peak memory from shapes only, and the checks that refuse a run before it starts."""

from __future__ import annotations

import os

import torch

from .data import KnowledgeGraph
from .models import build_model
from .spec import DTYPES, RunSpec
from .strategies import build_strategy


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
    ``training``: the strategy's score tensors (:meth:`kdkge.strategies.TrainingStrategy.training_bytes`:
    the ``[K, batch, |E|]`` score matrix of 1vsAll/KvsAll with its loss terms and gradient and the
    ``[|E|, K, d]`` tail vectors a Kronecker model expands — or negative sampling's ``[K, batch, 1 + k]``
    scores and gathered ``[batch, K, 1 + k, w]`` tail vectors) plus the batch's ``[K, batch, d]`` query
    vectors (and their gradients); ``evaluation``: the ``[K, 4096, |E|]`` scores of a ranking batch
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
    training = build_strategy(base).training_bytes(k, batch, entities, base.dim, net.stored_width, size) + queries_d
    queries = min(eval_batch_size, 2 * max(len(kg.valid), len(kg.test), len(kg.train)))
    evaluation = k * queries * entities * (size + 3) + expanded // 2
    return {"model": 5 * params * size, "training": training, "evaluation": evaluation,
            "total": 5 * params * size + max(training, evaluation), "parameters": params}


def check_resources(specs: list[RunSpec], kg: KnowledgeGraph, device: torch.device | str = "cpu",
                    eval_batch_size: int = 4096) -> None:
    """Refuse, with a one-line ``ValueError``, a run that cannot fit: too many negatives for the
    graph, or more memory than the device has (``KDKGE_MEMORY_CHECK=0`` skips the memory check)."""
    base = specs[0]
    build_strategy(base).check_graph(kg)  # e.g. more negatives than the graph has entities
    if os.environ.get("KDKGE_MEMORY_CHECK", "1") == "0":
        return
    device = torch.device(device) if not isinstance(device, torch.device) else device
    available = available_memory(device)
    if available is None:
        return
    need = memory_estimate(specs, kg, eval_batch_size)
    free, source = available
    if need["total"] > free:
        stacked = f" × {len(specs)} stacked" if len(specs) > 1 else ""
        raise ValueError(
            f"model={base.model} dim={base.dim} on {kg.name} ({kg.num_entities:,} entities, batch_size={base.batch_size}{stacked}) "
            f"needs about {_gb(need['total'])} ({need['parameters']:,} parameters with gradients and Adam moments: "
            f"{_gb(need['model'])}; score matrices: {_gb(max(need['training'], need['evaluation']))}) but "
            f"{_gb(free)} are available ({source}): lower dim or batch_size (KDKGE_MEMORY_CHECK=0 skips this check)"
        )
