"""Epoch times of dicee 0.3.3 (the paper's framework) DistMult on UMLS, KvsAll; prints one JSON line.

Same settings as kdkge's benchmark: d = 289, batch 1024, Adam lr 0.01, KvsAll (dicee adds the
reciprocal triples itself for KvsAll), BatchNorm1d normalisation as in the paper's runs.
An epoch is timed from dicee's ``on_train_epoch_start`` to its ``on_train_epoch_end`` hook.

dicee calls ``tiktoken.get_encoding("gpt2")`` whenever it loads a graph, which downloads a
tokenizer file and fails offline; it is only used for byte-pair-encoded models, so it is stubbed.

Usage (in .bench-venv): python benchmarks/dicee_driver.py --data data/umls --warmup 2 --epochs 5
"""

import json
import os
import sys
import tempfile
import time
import types

import torch
from driver_cli import driver_parser  # benchmarks/, the script's folder


def stub_tiktoken() -> None:
    class _Encoding:
        n_vocab = 50257  # gpt2
        def encode(self, text, *args, **kwargs):
            return [0]

        def decode(self, tokens, *args, **kwargs):
            return ""

    module = types.ModuleType("tiktoken")
    module.get_encoding = lambda name: _Encoding()
    sys.modules["tiktoken"] = module


def main() -> None:
    parser = driver_parser()
    parser.add_argument("--data", required=True, help="folder with train.txt, valid.txt, test.txt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    stub_tiktoken()
    import dicee
    from dicee.config import Namespace
    from dicee.executer import Execute
    from dicee.trainer.torch_trainer import TorchTrainer

    starts, ends, cpu_starts, cpu_ends, instances = [], [], [], [], []
    original_start, original_end = TorchTrainer.on_train_epoch_start, TorchTrainer.on_train_epoch_end

    def on_start(self, *a, **k):
        if not instances:
            instances.append(len(self.train_dataloaders.dataset))
        starts.append(time.perf_counter())
        cpu_starts.append(time.process_time())
        return original_start(self, *a, **k)

    def on_end(self, *a, **k):
        ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
        return original_end(self, *a, **k)

    TorchTrainer.on_train_epoch_start, TorchTrainer.on_train_epoch_end = on_start, on_end

    config = Namespace()
    config.dataset_dir = os.path.abspath(args.data)
    config.model = "DistMult"
    config.scoring_technique = "KvsAll"
    config.trainer = "torchCPUTrainer"
    config.embedding_dim = args.dim
    config.batch_size = 1024
    config.lr = 0.01
    config.optim = "Adam"
    config.num_epochs = args.warmup + args.epochs
    config.normalization = "BatchNorm1d"
    config.eval_model = "test"  # dicee adds reciprocal triples only when it evaluates (after the timed epochs)
    config.num_core = 0
    config.random_seed = 1
    with tempfile.TemporaryDirectory() as storage:
        config.storage_path = storage
        devnull = open(os.devnull, "w")
        stdout, sys.stdout = sys.stdout, devnull  # dicee prints a lot
        try:
            Execute(config).start()
        finally:
            sys.stdout = stdout
    times = [b - a for a, b in zip(starts, ends)]
    cpu_times = [b - a for a, b in zip(cpu_starts, cpu_ends)]
    print(json.dumps({
        "framework": f"dicee {getattr(dicee, '__version__', '0.3.3')}",
        "epoch_seconds": times[args.warmup:],
        "epoch_cpu_seconds": cpu_times[args.warmup:],  # process CPU time: robust to other tenants' load
        "import_and_setup_seconds": (starts[0] if starts else time.perf_counter()) - started,
        "training_instances": instances[0] if instances else None,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
