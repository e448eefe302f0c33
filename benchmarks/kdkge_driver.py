"""Epoch times of kdkge's DistMult on UMLS (KvsAll with reciprocals); prints one JSON line.

Usage: python benchmarks/kdkge_driver.py --warmup 2 --epochs 5 [--threads 1] [--dim 289]
"""

import json
import math
import time

import torch
from driver_cli import driver_parser  # benchmarks/, the script's folder


def main() -> None:
    parser = driver_parser()
    parser.add_argument("--dataset", default="umls")
    parser.add_argument("--strategy", default="kvsall")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    from kdkge.experiment import RunSpec, run

    from kdkge.data import load_dataset, training_labels, with_reciprocals

    kg = load_dataset(args.dataset)
    instances = len(training_labels(with_reciprocals(kg.train, len(kg.relations)), args.strategy))
    # the peers train KvsAll with BCE: the paper text's protocol (paper_code, the default, trains 1vsAll only)
    spec = RunSpec(dataset=args.dataset, model="distmult", dim=args.dim, strategy=args.strategy, protocol="paper_text",
                   epochs=args.warmup + args.epochs, batch_size=1024, lr=0.01)
    stamps, cpu, losses = [], [], []

    def on_epoch(epoch, mean_losses):
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
        losses.extend(mean_losses)

    t0, c0 = time.perf_counter(), time.process_time()  # epoch 1 also pays for data loading and model set-up: a warm-up epoch
    run([spec], progress=False, eval_splits=(), on_epoch=on_epoch)
    times = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    floor = matmul_floor(instances, args.dim, kg.num_entities, repeats=args.epochs)
    cpu_times = [b - a for a, b in zip([c0] + cpu[:-1], cpu)]
    print(json.dumps({
        "framework": "kdkge",
        "epoch_seconds": times[args.warmup:],
        "epoch_cpu_seconds": cpu_times[args.warmup:],  # process CPU time: robust to other tenants' load
        "import_and_setup_seconds": t0 - started,
        "training_instances": instances,
        "losses_finite": all(math.isfinite(v) for v in losses),
        "threads": torch.get_num_threads(),
        "matmul_floor_cpu_seconds": floor,
    }))


def matmul_floor(instances: int, dim: int, entities: int, repeats: int) -> float:
    """CPU seconds per epoch of the three matrix products every 1vsAll/KvsAll step must do, alone:
    scores ``Q Eᵀ`` ([B, d] × [d, |E|]) and the gradients ``G E`` and ``Gᵀ Q`` (float32, batches of 1024).

    A lower bound for any implementation of the epoch with these FLOPs on this core.
    """
    sizes = [1024] * (instances // 1024) + ([instances % 1024] if instances % 1024 else [])
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(entities, dim, generator=gen)
    data = [(torch.randn(b, dim, generator=gen), torch.randn(b, entities, generator=gen)) for b in sizes]
    best = math.inf
    for _ in range(max(repeats, 3)):
        c0 = time.process_time()
        for q, g in data:
            torch.mm(q, emb.t())
            torch.mm(g, emb)
            torch.mm(g.t(), q)
        best = min(best, time.process_time() - c0)
    return best


if __name__ == "__main__":
    main()
