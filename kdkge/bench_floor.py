"""Epoch time against the floor of every training strategy (``python -m kdkge.bench --only floors``).

For each strategy — 1vsAll (with the per-batch deduplication of ``(h, r)`` that training does),
KvsAll, negative sampling — and each paper model at the paper's sizes (Table 2: DistMult and
KD-Rel-DistMult d = 289, KD-DistMult d = 256) on UMLS, one process times, in interleaved rounds:

* **the epoch**: :func:`kdkge.training.train_epochs` (forward, fused loss, backward, Adam), CPU
  time per epoch from one epoch-end callback to the next;
* **the floor**: the matrix products no implementation of that epoch can avoid, timed alone with
  the same shapes, batches, dtype and threads — the score product ``Q·Eᵀ`` and the two backward
  products ``G·E`` (gradient of the queries) and ``Gᵀ·Q`` (gradient of the entity matrix); for
  negative sampling the cheaper of the batched products ``[B, n, w]·[B, w, 1]`` of the gathered
  candidates (and their two backward products) and the dense products over all entities.

The ratio epoch / floor says how much of an epoch is overhead beyond the unavoidable FLOPs.
:func:`profile_epoch` gives the torch.profiler table (top operators by self CPU time) of a
configuration, the evidence for where the rest goes.
"""

from __future__ import annotations

import math
import resource
import statistics
import time

import torch

MODELS = ("distmult", "kd_rel_distmult", "kd_distmult")
TABLE2_DIM = {"distmult": 289, "kd_rel_distmult": 289, "kd_distmult": 256}
STRATEGIES = ("1vsall", "kvsall", "negsamp")
#: The loss each strategy is timed with: the paper_code protocol's softmax CE where it applies
#: (1vsAll), the paper text's BCE otherwise (KvsAll has several true tails per row; negative
#: sampling under paper_code is refused).
PROTOCOL = {"1vsall": "paper_code", "kvsall": "paper_text", "negsamp": "paper_text"}


class Setup:
    """Model, labels, loss and optimizer of one configuration, trained epoch by epoch."""

    def __init__(self, model_name: str, strategy: str, dim: int | None = None, dataset: str = "umls",
                 num_negatives: int = 32, dtype: torch.dtype = torch.float32, stack: int = 1):
        from .experiment import RunSpec, prepare_data
        from .losses import build_loss
        from .models import build_model
        from .strategies import build_strategy
        from .training import make_optimizer

        dim = dim or TABLE2_DIM[model_name]
        self.spec = RunSpec(dataset=dataset, model=model_name, dim=dim, strategy=strategy, protocol=PROTOCOL[strategy],
                            num_negatives=num_negatives)
        kg = prepare_data(self.spec)
        self.strategy_impl = build_strategy(self.spec)
        self.labels = self.strategy_impl.labels(kg.training_triples())
        self.model = build_model(model_name, kg.num_entities, kg.num_relations, dim, stack=stack)
        self.model.reset_parameters([1 + k for k in range(stack)])
        self.model.to(dtype=dtype)
        self.losses = [build_loss("none", None, self.spec.loss, self.spec.protocol) for _ in range(stack)]
        self.optimizer = make_optimizer(self.model, self.spec.lr, torch.device("cpu"))
        self.generators = [torch.Generator().manual_seed(1)]
        self.epoch = 0
        self.width = self.model.stored_width
        self.num_entities = kg.num_entities
        self.dtype = dtype

    def train(self, epochs: int, on_epoch=None) -> None:
        from .training import train_epochs

        train_epochs(self.model, self.labels, self.losses, epochs=self.epoch + epochs, start_epoch=self.epoch,
                     batch_size=self.spec.batch_size, lr=self.spec.lr, seeds=[1] * len(self.losses), device=torch.device("cpu"),
                     optimizer=self.optimizer, generators=self.generators, progress=False,
                     strategy=self.strategy_impl,
                     on_epoch_end=(lambda e, l, o, g: on_epoch()) if on_epoch else None)
        self.epoch += epochs

    def score_rows_per_batch(self) -> list[int]:
        """Rows of the score matrix of each batch of an epoch (distinct queries for 1vsAll)."""
        from .training import batch_order

        n = len(self.labels)
        order = batch_order(n, self.spec.batch_size, torch.Generator().manual_seed(12345))
        if self.spec.strategy != "1vsall":
            return [len(idx) for idx in order]
        q = self.labels.queries
        key = q[:, 0] * (int(q[:, 1].max()) + 1) + q[:, 1]
        return [len(torch.unique(key[idx])) for idx in order]


class Floor:
    """The epoch's unavoidable matrix products with pre-made operands, timed alone."""

    def __init__(self, setup: Setup):
        gen = torch.Generator().manual_seed(0)
        w, e, dtype = setup.width * setup.model.stack, setup.num_entities, setup.dtype
        self.strategy = setup.strategy = setup.spec.strategy
        self.emb = torch.randn(e, w, generator=gen, dtype=dtype)
        self.data = []
        self.dense = [(torch.randn(rows, w, generator=gen, dtype=dtype), torch.randn(rows, e, generator=gen, dtype=dtype))
                      for rows in setup.score_rows_per_batch()]
        if self.strategy == "negsamp":
            n = 1 + setup.spec.num_negatives
            for b in setup.score_rows_per_batch():
                self.data.append((torch.randn(b, n, w, generator=gen, dtype=dtype), torch.randn(b, w, 1, generator=gen, dtype=dtype),
                                  torch.randn(b, n, 1, generator=gen, dtype=dtype)))
        else:
            for rows in setup.score_rows_per_batch():
                self.data.append((torch.randn(rows, w, generator=gen, dtype=dtype), torch.randn(rows, e, generator=gen, dtype=dtype)))

    def epoch(self, dense: bool = True) -> None:
        if not dense:  # negative sampling, candidate by candidate
            for vectors, q, g in self.data:
                torch.bmm(vectors, q)  # scores [B, n, 1]
                torch.bmm(g, q.transpose(1, 2))  # ∂/∂vectors [B, n, w]
                torch.bmm(vectors.transpose(1, 2), g)  # ∂/∂q [B, w, 1]
        else:
            for q, g in self.dense:
                torch.mm(q, self.emb.t())  # scores
                torch.mm(g, self.emb)  # ∂/∂Q
                torch.mm(g.t(), q)  # ∂/∂E


def measure(model_name: str, strategy: str, rounds: int = 5, epochs: int = 5, warmup: int = 2, **kwargs) -> dict:
    """Median CPU seconds per epoch and per floor epoch, interleaved round by round."""
    setup = Setup(model_name, strategy, **kwargs)
    floor = Floor(setup)
    setup.train(warmup)
    floor.epoch()
    if strategy == "negsamp":
        floor.epoch(dense=False)
    epoch_times, floor_times = [], []
    faults = system = 0.0  # minor page faults and system CPU seconds of the training epochs (getrusage)
    for _ in range(rounds):
        stamps = [time.process_time()]
        before = resource.getrusage(resource.RUSAGE_SELF)
        setup.train(epochs, on_epoch=lambda: stamps.append(time.process_time()))
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults += after.ru_minflt - before.ru_minflt
        system += after.ru_stime - before.ru_stime
        epoch_times.append(statistics.median(b - a for a, b in zip(stamps, stamps[1:])))
        samples = []
        for _ in range(epochs):
            # negative sampling: the cheaper of the two ways to get the candidates' scores — the batched
            # products of the gathered candidates, or the dense products over all entities (a superset)
            best = math.inf
            for dense in ((True, False) if strategy == "negsamp" else (True,)):
                started = time.process_time()
                floor.epoch(dense)
                best = min(best, time.process_time() - started)
            samples.append(best)
        floor_times.append(statistics.median(samples))
    epoch, low = statistics.median(epoch_times), statistics.median(floor_times)
    return {"model": model_name, "dim": setup.spec.dim, "strategy": strategy, "loss": setup.spec.loss,
            "batches": len(floor.data), "score_rows": sum(x[0].shape[0] for x in floor.data),
            "epoch_ms": epoch * 1000, "floor_ms": low * 1000, "ratio": epoch / low if low else math.inf,
            "minor_faults_per_epoch": faults / (rounds * epochs), "system_ms_per_epoch": system * 1000 / (rounds * epochs)}


def profile_epoch(model_name: str, strategy: str, epochs: int = 5, top: int = 12, **kwargs) -> str:
    """torch.profiler table of ``epochs`` training epochs: top operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    setup = Setup(model_name, strategy, **kwargs)
    setup.train(2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        setup.train(epochs)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def bench_fused_norm(rows: int = 1024, widths=(289, 16), repeats: int = 7, inner: int = 20) -> list[dict]:
    """``BN(BN(a) ∘ BN(b))`` forward + backward: ``nn.BatchNorm1d`` modules vs :func:`kdkge.fused_norm.product_query`.

    The lever the profile points at (batch norm is the largest operator of a DistMult 1vsAll
    epoch), measured side by side: CPU ms per call, interleaved rounds.
    """
    from .fused_norm import product_query

    gen = torch.Generator().manual_seed(0)
    out = []
    for width in widths:
        a = torch.randn(rows, width, generator=gen).requires_grad_()
        b = torch.randn(rows, width, generator=gen).requires_grad_()
        g = torch.randn(rows, width, generator=gen)
        norms = [torch.nn.BatchNorm1d(width) for _ in range(3)]
        params = [a, b] + [p for n in norms for p in n.parameters()]
        variants = {"modules": lambda: torch.autograd.grad(norms[2](norms[0](a) * norms[1](b)), params, g),
                    "fused": lambda: torch.autograd.grad(product_query(*norms, a, b), params, g)}
        times = {name: [] for name in variants}
        for fn in variants.values():
            fn()
        for _ in range(repeats):
            for name, fn in variants.items():
                started = time.process_time()
                for _ in range(inner):
                    fn()
                times[name].append((time.process_time() - started) / inner)
        modules, fused = statistics.median(times["modules"]), statistics.median(times["fused"])
        out.append({"rows": rows, "width": width, "modules_ms": modules * 1000, "fused_ms": fused * 1000, "speedup": modules / fused})
    return out


def bench_malloc(model_name: str = "distmult", strategy: str = "1vsall", rounds: int = 3) -> dict:
    """Epoch time, minor page faults and system CPU time per epoch with and without :mod:`kdkge.malloc`'s
    tuning, alternating fresh processes (the setting is per process), each ``measure(..., rounds=2, epochs=4)``;
    medians over ``rounds``."""
    import json
    import os
    import subprocess
    import sys

    keys = ("epoch_ms", "minor_faults_per_epoch", "system_ms_per_epoch")
    seen = {flag: {k: [] for k in keys} for flag in ("0", "1")}
    for _ in range(rounds):
        for flag in ("0", "1"):
            env = dict(os.environ, KDKGE_MALLOC_TUNE=flag, OMP_NUM_THREADS="1")
            done = subprocess.run([sys.executable, "-m", "kdkge.bench_floor", "measure", model_name, strategy],
                                  capture_output=True, text=True, env=env, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            for k in keys:
                seen[flag][k].append(result[k])
    off, on = (statistics.median(seen[flag]["epoch_ms"]) for flag in ("0", "1"))
    return {"model": model_name, "strategy": strategy, "default_ms": off, "tuned_ms": on, "speedup": off / on,
            "rounds_default_ms": seen["0"]["epoch_ms"], "rounds_tuned_ms": seen["1"]["epoch_ms"],
            **{f"{k.replace('_per_epoch', '')}_{name}": statistics.median(seen[flag][k])
               for k in keys[1:] for flag, name in (("0", "off"), ("1", "on"))}}


def bench_floors(rounds: int = 5, epochs: int = 5, models=MODELS, strategies=STRATEGIES, log=print,
                 profile_above: float | None = 1.5, profile_epochs: int = 3) -> list[dict]:
    """:func:`measure` for every strategy × model; the profile of each whose ratio exceeds ``profile_above``."""
    results = []
    for strategy in strategies:
        for model_name in models:
            r = measure(model_name, strategy, rounds=rounds, epochs=epochs)
            log(f"  {strategy:8s} {model_name:16s} d={r['dim']}: epoch {r['epoch_ms']:.2f} ms, floor {r['floor_ms']:.2f} ms "
                f"→ {r['ratio']:.2f}×")
            if profile_above is not None and r["ratio"] > profile_above:
                r["profile"] = profile_epoch(model_name, strategy, epochs=profile_epochs, top=8)
            results.append(r)
    return results


if __name__ == "__main__":
    import json
    import sys

    torch.set_num_threads(1)
    if sys.argv[1:2] == ["profile"]:
        print(profile_epoch(sys.argv[2], sys.argv[3]))
    elif sys.argv[1:2] == ["measure"]:
        print(json.dumps(measure(sys.argv[2], sys.argv[3], rounds=2, epochs=4)))
    else:
        bench_floors(profile_above=None)
