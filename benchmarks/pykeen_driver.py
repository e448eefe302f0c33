"""Epoch times of PyKEEN 1.11's LCWA DistMult on UMLS with inverse triples; prints one JSON line.

Same settings as kdkge's benchmark: d = 289, batch 1024, Adam lr 0.01, BCE-with-logits over all
entities for each (h, r) of the training triples and their inverses (LCWA ≙ KvsAll).
PyKEEN's DistMult keeps its own defaults otherwise (unit-norm entity constraint, no batch norm);
its L_p regulariser is switched off, as kdkge has none.

Usage (in .bench-venv): python benchmarks/pykeen_driver.py --data data/umls --warmup 2 --epochs 5
"""

import json
import time

import torch
from driver_cli import driver_parser  # benchmarks/, the script's folder


def main() -> None:
    parser = driver_parser()
    parser.add_argument("--data", required=True, help="folder with train.txt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    import pykeen
    from pykeen.losses import BCEWithLogitsLoss
    from pykeen.models import DistMult
    from pykeen.training import LCWATrainingLoop
    from pykeen.training.callbacks import TrainingCallback
    from pykeen.triples import TriplesFactory
    from pykeen.triples.instances import LCWAInstances

    training = TriplesFactory.from_path(f"{args.data}/train.txt", create_inverse_triples=True)
    model = DistMult(triples_factory=training, embedding_dim=args.dim, loss=BCEWithLogitsLoss(),
                     regularizer=None, random_seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    loop = LCWATrainingLoop(model=model, triples_factory=training, optimizer=optimizer)
    stamps, cpu, losses = [], [], []

    class Clock(TrainingCallback):
        def post_epoch(self, epoch, epoch_loss, **kwargs):
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())
            losses.append(float(epoch_loss))

    t0, c0 = time.perf_counter(), time.process_time()
    loop.train(triples_factory=training, num_epochs=args.warmup + args.epochs, batch_size=1024,
               use_tqdm=False, use_tqdm_batch=False, callbacks=Clock())
    times = [b - a for a, b in zip([t0] + stamps[:-1], stamps)]
    cpu_times = [b - a for a, b in zip([c0] + cpu[:-1], cpu)]
    print(json.dumps({
        "framework": f"pykeen {pykeen.get_version()}",
        "epoch_seconds": times[args.warmup:],
        "epoch_cpu_seconds": cpu_times[args.warmup:],  # process CPU time: robust to other tenants' load
        "import_and_setup_seconds": t0 - started,
        "training_instances": len(LCWAInstances.from_triples_factory(training)),  # distinct (h, r)
        "losses_finite": all(map(lambda v: v == v and abs(v) != float("inf"), losses)),
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
