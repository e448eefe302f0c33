"""Train the three models of Table 2 on UMLS at the paper's settings with the Python API.

Run:  .venv/bin/python examples/table2_umls.py   (about 3 × 1 min on one CPU core)
"""

import time

import torch

from kdkge.experiment import RunSpec, run_one

torch.set_num_threads(1)
PAPER = {"distmult": (0.995, 0.517), "kd_rel_distmult": (0.996, 0.531), "kd_distmult": (0.814, 0.541)}  # Table 2: train / test MRR

print("| model | d | params | train MRR (paper) | test MRR (paper) | test H@1 | H@3 | H@10 | seconds |")
print("|---|---|---|---|---|---|---|---|---|")
for model, dim in (("distmult", 289), ("kd_rel_distmult", 289), ("kd_distmult", 256)):
    started = time.perf_counter()
    # defaults are the paper's: UMLS, 1vsAll + reciprocals, BCE, Adam lr 0.01, batch 1024, 1000 epochs, seed 1
    result = run_one(RunSpec(dataset="umls", model=model, dim=dim), progress=False)
    train, test = result.metrics["train"], result.metrics["test"]
    paper_train, paper_test = PAPER[model]
    print(
        f"| {model} | {dim} | {result.num_parameters:,} | {train['mrr']:.3f} ({paper_train}) | "
        f"{test['mrr']:.3f} ({paper_test}) | {test['hits@1']:.3f} | {test['hits@3']:.3f} | {test['hits@10']:.3f} | "
        f"{time.perf_counter() - started:.0f} |",
        flush=True,
    )
