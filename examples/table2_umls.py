"""Train the three models of Table 2 on UMLS at the paper's settings with the Python API.

Run:  .venv/bin/python examples/table2_umls.py [paper_code|paper_text]   (about 3 × 1–2 min on one CPU core)

paper_code (the default) is what the authors' code ran: softmax cross-entropy, their 2022
vocabulary (|Θ| as in the paper) and their 2022 test split, reported beside the clean one.
"""

import sys
import time

import torch

from kdkge.experiment import RunSpec, run_one

torch.set_num_threads(1)
PROTOCOL = sys.argv[1] if len(sys.argv) > 1 else "paper_code"
PAPER = {"distmult": (0.995, 0.517), "kd_rel_distmult": (0.996, 0.531), "kd_distmult": (0.814, 0.541)}  # Table 2: train / test MRR

print(f"protocol={PROTOCOL}")
print("| model | d | params | train MRR (paper) | test MRR 2022 split (paper) | test MRR clean | H@1 | H@3 | H@10 (clean) | seconds |")
print("|---|---|---|---|---|---|---|---|---|---|")
for model, dim in (("distmult", 289), ("kd_rel_distmult", 289), ("kd_distmult", 256)):
    started = time.perf_counter()
    # the paper's settings: UMLS, 1vsAll + reciprocals, Adam lr 0.01, batch 1024, 1000 epochs, seed 1
    result = run_one(RunSpec(dataset="umls", model=model, dim=dim, protocol=PROTOCOL), progress=False)
    train, test = result.metrics["train"], result.metrics["test"]
    paper22 = f"{result.metrics['paper_test']['mrr']:.3f}" if "paper_test" in result.metrics else "—"
    paper_train, paper_test = PAPER[model]
    print(
        f"| {model} | {dim} | {result.num_parameters:,} | {train['mrr']:.3f} ({paper_train}) | {paper22} ({paper_test}) | "
        f"{test['mrr']:.3f} | {test['hits@1']:.3f} | {test['hits@3']:.3f} | {test['hits@10']:.3f} | "
        f"{time.perf_counter() - started:.0f} |",
        flush=True,
    )
