"""Before/after speed of the training loop: an older commit's ``kdkge`` against the working tree.

Both packages are imported into one process (the old one renamed ``kdkge_base``) and trained
alternately, 5 rounds; each round's figure is the median CPU time per epoch (one torch thread),
reported as the median over rounds.

Usage: .venv/bin/python benchmarks/compare_commits.py 10533f9 distmult:289:umls kd_distmult:256:kinship
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    commit, cases = sys.argv[1], [c.split(":") for c in sys.argv[2:]] or [["distmult", "289", "umls"]]
    old = Path(tempfile.mkdtemp(prefix="kdkge_base_"))
    archive = subprocess.run(["git", "archive", commit, "kdkge"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    (old / "kdkge").rename(old / "kdkge_base")
    (old / "data").symlink_to(REPO / "data")  # the old package finds data/ beside itself
    sys.path.insert(0, str(old))
    torch.set_num_threads(1)
    import kdkge.experiment as new
    import kdkge_base.experiment as base

    print(f"CPU ms per epoch (1vsAll, batch 1024, 1 thread): {commit} vs working tree")
    for model, dim, dataset in cases:
        times = {"before": [], "after": []}
        for _ in range(5):
            for name, module in (("before", base), ("after", new)):
                stamps = []
                module.run([module.RunSpec(dataset=dataset, model=model, dim=int(dim), epochs=6)], progress=False,
                           eval_splits=(), on_epoch=lambda e, l: stamps.append(time.process_time()))
                times[name].append(statistics.median(b - a for a, b in zip(stamps, stamps[1:])) * 1000)
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"{model:16s} d={dim:>4} {dataset:8s} before {before:7.1f}  after {after:7.1f}  → {before / after:.2f}×", flush=True)


if __name__ == "__main__":
    main()
