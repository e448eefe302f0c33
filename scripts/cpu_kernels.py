"""How far the CPU's kernels move the Table 2 numbers: the same runs under other ATen kernels.

    .venv/bin/python scripts/cpu_kernels.py [--epochs 1000] [--protocol paper_code] [--out FILE]

Trains the six Table 2 configurations (seed 1, one thread) once per ``ATEN_CPU_CAPABILITY``
(``default``, ``avx2`` and this CPU's native one), each in its own process with tracking=none, and
prints the test MRR and Hits@10 of each with the largest difference between kernels.  Float32
rounding differs between kernels (and between Intel and AMD, whose MKL paths differ); over 1000
epochs it moves the metrics in the third or fourth decimal.  Used for README, "Reproducibility".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [("umls", "distmult", 289), ("umls", "kd_rel_distmult", 289), ("umls", "kd_distmult", 256),
           ("kinship", "distmult", 289), ("kinship", "kd_rel_distmult", 400), ("kinship", "kd_distmult", 400)]
ROW = re.compile(r"^(test|test22)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", re.M)


def train(capability: str, dataset: str, model: str, dim: int, epochs: int, protocol: str) -> dict[str, list[float]]:
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
    out = subprocess.run([sys.executable, "train.py", f"dataset={dataset}", f"model={model}", f"dim={dim}", f"epochs={epochs}",
                          f"protocol={protocol}", "tracking=none", "threads=1", "progress=false", "eval_every=0",
                          f"hydra.run.dir={ROOT / 'outputs' / 'cpu_kernels'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return {m.group(1): [float(v) for v in m.groups()[1:]] for m in ROW.finditer(out.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--protocol", default="paper_code")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    import torch

    native = torch.backends.cpu.get_cpu_capability().lower()
    capabilities = ["default", "avx2"] + ([native] if native not in ("default", "avx2") else [])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown")
    print(f"CPU: {cpu}; kernels: {', '.join(capabilities)}; {args.epochs} epochs, protocol={args.protocol}, seed 1, 1 thread")
    results = []
    for dataset, model, dim in CONFIGS:
        row = {"dataset": dataset, "model": model, "dim": dim}
        for cap in capabilities:
            row[cap] = train(cap, dataset, model, dim, args.epochs, args.protocol)["test"]
        mrrs = [row[c][0] for c in capabilities]
        row["max_mrr_diff"] = max(mrrs) - min(mrrs)
        results.append(row)
        print(f"{dataset:8s} {model:16s} d={dim:<4d} test MRR " + "  ".join(f"{c}={row[c][0]:.4f}" for c in capabilities)
              + f"  max diff {row['max_mrr_diff']:.4f}", flush=True)
    print(f"largest test-MRR difference between kernels: {max(r['max_mrr_diff'] for r in results):.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu": cpu, "epochs": args.epochs, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
