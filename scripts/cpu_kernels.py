"""How far the CPU's kernels move the Table 2 numbers: the same runs under other ATen kernels.

    .venv/bin/python scripts/cpu_kernels.py [--epochs 1000] [--protocol paper_code] [--out FILE]

Trains the six Table 2 configurations (seed 1, one thread) once per kernel setting — ATen's
``ATEN_CPU_CAPABILITY`` (``default``, ``avx2``, native) and MKL's ``MKL_ENABLE_INSTRUCTIONS=AVX2``
(MKL picks its code path per CPU; this is the nearest stand-in for another CPU) — each in its own
process through the Python API, and prints the test MRR of each with the largest difference.  Float32
rounding differs between kernels (and between Intel and AMD, whose MKL paths differ); over 1000
epochs it moves the metrics in the third or fourth decimal.  Used for README, "Reproducibility".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [("umls", "distmult", 289), ("umls", "kd_rel_distmult", 289), ("umls", "kd_distmult", 256),
           ("kinship", "distmult", 289), ("kinship", "kd_rel_distmult", 400), ("kinship", "kd_distmult", 400)]


SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
from kdkge.experiment import RunSpec, run_one
r = run_one(RunSpec(dataset=sys.argv[1], model=sys.argv[2], dim=int(sys.argv[3]), epochs=int(sys.argv[4]), protocol=sys.argv[5]),
            progress=False, eval_splits=("test",))
print(json.dumps({split: values["mrr"] for split, values in r.metrics.items()}))
"""


def train(setting: str, dataset: str, model: str, dim: int, epochs: int, protocol: str) -> dict[str, float]:
    key, value = setting.split("=")
    env = {**os.environ, key: value}
    out = subprocess.run([sys.executable, "-c", SCRIPT, dataset, model, str(dim), str(epochs), protocol],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--protocol", default="paper_code")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    import torch

    native = torch.backends.cpu.get_cpu_capability().lower()
    capabilities = [f"ATEN_CPU_CAPABILITY={c}" for c in ["default", "avx2"] + ([native] if native not in ("default", "avx2") else [])]
    capabilities.append("MKL_ENABLE_INSTRUCTIONS=AVX2")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "unknown")
    print(f"CPU: {cpu}; kernels: {', '.join(capabilities)}; {args.epochs} epochs, protocol={args.protocol}, seed 1, 1 thread")
    results = []
    for dataset, model, dim in CONFIGS:
        row = {"dataset": dataset, "model": model, "dim": dim}
        for cap in capabilities:
            row[cap] = train(cap, dataset, model, dim, args.epochs, args.protocol)["test"]
        mrrs = [row[c] for c in capabilities]
        row["max_mrr_diff"] = max(mrrs) - min(mrrs)
        results.append(row)
        print(f"{dataset:8s} {model:16s} d={dim:<4d} test MRR " + "  ".join(f"{c.split('=')[1]}={row[c]:.6f}" for c in capabilities)
              + f"  max diff {row['max_mrr_diff']:.2e}", flush=True)
    print(f"largest test-MRR difference between kernels: {max(r['max_mrr_diff'] for r in results):.2e}")
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu": cpu, "epochs": args.epochs, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
