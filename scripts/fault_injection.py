"""Fault injection: kill a small sweep with SIGKILL at random moments, relaunch, check nothing is lost.

    .venv/bin/python scripts/fault_injection.py [--kills 5] [--seed 0] [--store DIR] [--models M,M] [--dims D,D] [--epochs 400]

Each round launches the same sweep (by default 9 configurations on NATIONS: 3 models × d = 4, 16,
36; 400 epochs each, training state every 5 epochs), kills the whole process group after a random 4–20 s, and launches again; a last
launch runs to completion.  Then MLflow must hold exactly one FINISHED run per configuration and
no RUNNING run, and the finished metrics must equal an uninterrupted sweep's.  Prints the figures
and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from kdkge.parent_runs import without_parents  # noqa: E402
from kdkge.tracking import find_runs  # noqa: E402

SWEEP = ["train.py", "-m", "dataset=nations", "batch_size=256", "threads=1", "progress=false",
         "eval_every=0", "checkpoint=false", "checkpoint_every=5"]
MODELS, DIMS = "distmult,kd_rel_distmult,kd_distmult", "4,16,36"


def launch(uri: str, grid: list[str], extra=(), kill_after: float | None = None) -> str:
    """Run the sweep ``grid`` against ``uri``; with ``kill_after`` SIGKILL its process group then."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.Popen([sys.executable, *SWEEP, *grid, *extra], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_after is None:
        return "completed" if proc.wait() == 0 else f"exit {proc.returncode}"
    try:
        proc.wait(timeout=kill_after)
        return "completed before the kill"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed after {kill_after:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="how many launches are killed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--store", default=None, help="folder for the two MLflow stores (default: a temporary one)")
    parser.add_argument("--models", default=MODELS, help=f"the sweep's models (default: {MODELS})")
    parser.add_argument("--dims", default=DIMS, help=f"the sweep's sizes (default: {DIMS}; KD-DistMult needs squares)")
    parser.add_argument("--epochs", type=int, default=400, help="epochs per run (default: 400)")
    args = parser.parse_args()
    grid = [f"model={args.models}", f"dim={args.dims}", f"epochs={args.epochs}"]
    folder = Path(args.store or tempfile.mkdtemp(prefix="kdkge-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    uri, reference_uri = f"sqlite:///{folder}/faults.db", f"sqlite:///{folder}/reference.db"
    rng = random.Random(args.seed)
    started = time.time()

    print(f"reference: {launch(reference_uri, grid, ['checkpoint_every=0'])}")
    for round_ in range(1, args.kills + 1):
        print(f"round {round_}: {launch(uri, grid, kill_after=rng.uniform(4, 20))}")
    print(f"final launch: {launch(uri, grid)}")

    runs = find_runs(uri, "kdkge-nations")  # the training runs and the sweep's parent run (kdkge.parent_runs)
    reference = without_parents(find_runs(reference_uri, "kdkge-nations")).set_index("tags.config_hash")
    finished = without_parents(runs[runs.status == "FINISHED"])
    per_config = finished.groupby("tags.config_hash").size()
    resumed = finished["tags.resumed_from_epoch"].notna().sum() if "tags.resumed_from_epoch" in finished else 0
    checks = {
        "one FINISHED run per configuration": len(per_config) == len(reference) and bool((per_config == 1).all()),
        "no RUNNING run left": int((runs.status == "RUNNING").sum()) == 0,
        "metrics equal the uninterrupted sweep": all(
            abs(row["metrics.test_mrr"] - reference.loc[row["tags.config_hash"], "metrics.test_mrr"]) < 1e-9
            for _, row in finished.iterrows()
        ),
    }
    print(f"configurations: {len(reference)}; MLflow runs: {len(runs)} "
          f"({', '.join(f'{s} {n}' for s, n in runs.status.value_counts().items())}); "
          f"finished runs resumed from a training state: {resumed}; wall time {time.time() - started:.0f} s")
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
