"""``python -m kdkge.bench`` (``make bench``): speed figures, measured side by side in one run.

1. Epoch time of kdkge's DistMult (d = 289, UMLS, batch 1024, KvsAll with reciprocals) against
   PyKEEN 1.11's LCWA DistMult and the paper's own framework dicee, each in its own subprocess
   (``benchmarks/*_driver.py``; PyKEEN and dicee live in ``.bench-venv``, never in kdkge's deps),
   the three drivers alternating round by round.
2. KD-DistMult's closed form (Eq. 9 as ⟨h, r⟩·⟨h∘r, t⟩) against the explicit Kronecker
   reconstruction, one training step (forward, loss, backward, Adam) at d = 289, 2 500, 10 000.
3. Five calibration configurations trained stacked as one model against five sequential runs.
1b. Epoch / floor of every strategy (1vsAll with deduplicated queries, KvsAll, negative sampling) for
   the three paper models at Table 2's sizes, with torch.profiler tables and the levers measured
   side by side (``kdkge/bench_floor.py``).
4. Wall time of the full Tables 2–6 sweep on this machine: every configuration group of the sweep
   is trained for a few epochs by two worker processes with one torch thread each (the sweep's
   setting), and its 1000-epoch time is extrapolated; the extrapolation is checked on a few
   configurations trained for 100 epochs, and against a real timed subset (``train.py -m`` with the
   joblib launcher and a temporary MLflow store), whose per-job overhead is added to the estimate.

Every figure is a median over repeats, the compared variants interleaved, so a noisy shared
machine slows both sides alike.  The figures go to ``results/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from .bench_plan import (BENCH_PYTHON, CALIBRATIONS, DATASETS, DRIVERS, EPOCHS, EVAL_EVERY, FLOOR_GOAL, MODELS,  # noqa: F401
                         REPO, SIZES, SWEEP_GOAL_S, TABLE23_DIM, calibration_specs, estimated_seconds, schedule,
                         sweep_groups)
from .bench_report import fmt_s, floor_section, load_average, write_report  # noqa: F401


def log(message: str) -> None:
    print(message, flush=True)


def median(values) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------------------------


def machine_description() -> dict[str, str]:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu count": str(os.cpu_count()),
        "torch CPU capability": torch.backends.cpu.get_cpu_capability(),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "Thread(s) per core", "Core(s) per socket", "L2 cache", "L3 cache", "Hypervisor vendor"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        with open("/proc/meminfo") as handle:
            kb = int(handle.readline().split()[1])
        info["memory"] = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    info["load average at start (1, 5, 15 min)"] = load_average()
    return info





def run_driver(python: Path, script: str, args: list[str], timeout: float = 600) -> dict | None:
    command = [str(python), str(DRIVERS / script), *args]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        log(f"  {script}: timed out after {timeout:.0f} s")
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    log(f"  {script} failed (exit {done.returncode}): {last}")
    return {"error": f"exit {done.returncode}: {last}"}


def frameworks_available() -> dict[str, bool]:
    if not BENCH_PYTHON.exists():
        return {"pykeen": False, "dicee": False}
    found = {}
    for name in ("pykeen", "dicee"):
        probe = subprocess.run([str(BENCH_PYTHON), "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{name}') is None)"])
        found[name] = probe.returncode == 0
    return found


def bench_frameworks(rounds: int, warmup: int, epochs: int, threads: int) -> dict:
    available = frameworks_available()
    data = str(REPO / "data" / "umls")
    common = ["--warmup", str(warmup), "--epochs", str(epochs), "--threads", str(threads)]
    drivers = {"kdkge": (Path(sys.executable), "kdkge_driver.py", common)}
    if available["pykeen"]:
        drivers["pykeen"] = (BENCH_PYTHON, "pykeen_driver.py", ["--data", data, *common])
    if available["dicee"]:
        drivers["dicee"] = (BENCH_PYTHON, "dicee_driver.py", ["--data", data, *common])
    per_round: dict[str, list[float]] = {name: [] for name in drivers}  # wall seconds per epoch
    cpu_round: dict[str, list[float]] = {name: [] for name in drivers}  # the driver process's CPU seconds
    floors: list[float] = []  # CPU seconds per epoch of the three matrix products alone (kdkge driver)
    meta: dict[str, dict] = {}
    failures: dict[str, str] = {}
    for r in range(rounds):
        for name, (python, script, args) in drivers.items():
            result = run_driver(python, script, args)
            if result and "error" in result:
                failures[name] = result["error"]  # shown in the report: a missing peer is never silent
            elif result and result["epoch_seconds"]:
                per_round[name].append(median(result["epoch_seconds"]))
                cpu_round[name].append(median(result["epoch_cpu_seconds"]))
                meta[name] = result
                if "matmul_floor_cpu_seconds" in result:
                    floors.append(result["matmul_floor_cpu_seconds"])
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1] * 1000:.1f} ms" for n, v in per_round.items() if v))
    out = {"threads": threads, "rounds": rounds, "warmup": warmup, "epochs": epochs, "missing": [n for n, ok in available.items() if not ok],
           "failed": {n: reason for n, reason in failures.items() if not per_round.get(n)}}
    for name, values in per_round.items():
        if values:
            out[name] = {
                "epoch_ms": median(values) * 1000,
                "round_medians_ms": [v * 1000 for v in values],
                "cpu_epoch_ms": median(cpu_round[name]) * 1000,
                "framework": meta[name].get("framework", name),
                "training_instances": meta[name].get("training_instances"),
            }
    if floors and "kdkge" in out:
        out["kdkge"]["matmul_floor_cpu_ms"] = median(floors) * 1000
    return out


# --------------------------------------------------------------------------------------------
# 2. KD-DistMult closed form vs explicit reconstruction
# --------------------------------------------------------------------------------------------


def bench_kd_closed_form(dims=(289, 2500, 10000), repeats: int = 7, device: str = "cpu") -> list[dict]:
    from .data import load_dataset, training_labels, with_reciprocals
    from .losses import BCELoss, stacked_losses
    from .models import build_model
    from .training import make_optimizer

    torch_device = torch.device(device)
    kg = load_dataset("umls")
    labels = training_labels(with_reciprocals(kg.train, len(kg.relations)), "1vsall")
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:1024]
    h, r = (x.to(torch_device) for x in labels.queries[idx].unbind(1))
    rows, cols = labels.batch_targets(idx)
    rows, cols = rows.to(torch_device), cols.to(torch_device)
    ks = torch.zeros_like(rows)
    results = []
    for dim in dims:
        steps = {}
        for explicit in (False, True):
            model = build_model("kd_distmult", kg.num_entities, kg.num_relations, dim, explicit=explicit)
            model.reset_parameters([1])
            model.to(torch_device).train()
            optimizer = make_optimizer(model.parameters(), 0.01, torch_device)

            def step(model=model, optimizer=optimizer):
                scores = model.score_all_tails_stacked(h, r)
                loss = stacked_losses([BCELoss()], scores, ks, rows, cols)
                optimizer.zero_grad(set_to_none=True)
                loss.sum().backward()
                optimizer.step()
                if torch_device.type == "cuda":
                    torch.cuda.synchronize()

            step()  # warm-up
            steps[explicit] = step
        times = {False: [], True: []}
        for _ in range(repeats):
            for explicit, step in steps.items():
                inner = 1 if explicit and dim >= 2500 else 5
                started = time.process_time()
                for _ in range(inner):
                    step()
                times[explicit].append((time.process_time() - started) / inner)
        closed, explicit = median(times[False]), median(times[True])
        results.append({"dim": dim, "closed_ms": closed * 1000, "explicit_ms": explicit * 1000, "speedup": explicit / closed})
        log(f"  d={dim}: closed form {closed * 1000:.2f} ms, explicit {explicit * 1000:.1f} ms per step → {explicit / closed:.0f}×")
    return results


# --------------------------------------------------------------------------------------------
# 3. stacked vs sequential
# --------------------------------------------------------------------------------------------


def bench_stacked(epochs: int, repeats: int, device: str = "cpu") -> list[dict]:
    from .experiment import run

    results = []
    for model in MODELS:
        specs = calibration_specs(model, "umls", TABLE23_DIM[model], epochs)
        times = {"stacked": [], "sequential": []}
        for _ in range(repeats):
            clock = time.perf_counter if device != "cpu" else time.process_time
            started = clock()
            run(specs, device=device, progress=False)
            times["stacked"].append(clock() - started)
            started = clock()
            for spec in specs:
                run([spec], device=device, progress=False)
            times["sequential"].append(clock() - started)
        stacked, sequential = median(times["stacked"]), median(times["sequential"])
        results.append({"model": model, "dim": TABLE23_DIM[model], "stacked_s": stacked, "sequential_s": sequential, "speedup": sequential / stacked})
        log(f"  {model} d={TABLE23_DIM[model]}: stacked {stacked:.2f} s, sequential {sequential:.2f} s → {sequential / stacked:.2f}×")
    return results


# --------------------------------------------------------------------------------------------
# 4. the Tables 2-6 sweep
# --------------------------------------------------------------------------------------------


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def time_group(task) -> dict:
    """Set-up, epoch and evaluation times of a job trained for a few epochs, in CPU seconds.

    CPU time of the (single-threaded) worker is what the job costs a core of its own; wall time
    on this shared machine also counts other tenants' load, so it is recorded but not used.
    Epochs ``1 … n`` with an evaluation after epoch 2 and the last: the first epoch is a warm-up,
    the others give the epoch time; set-up = time to the end of epoch 1 minus one epoch.
    """
    specs, epochs = task
    from .experiment import run

    short = [dataclasses.replace(s, epochs=epochs) for s in specs]
    marks: list[tuple[str, float, float]] = []

    def mark(kind):
        marks.append((kind, time.process_time(), time.perf_counter()))

    mark("start")
    run(short, progress=False, eval_every=2, on_epoch=lambda e, l: mark("epoch"), on_eval=lambda e, m: mark("eval"))
    out = {"specs": [dataclasses.asdict(s) for s in specs]}
    for clock, suffix in ((1, ""), (2, "_wall")):
        epoch_times, eval_times = [], []
        for (kind_a, *a), (kind_b, *b) in zip(marks[1:], marks[2:]):
            if kind_b == "epoch":
                epoch_times.append(b[clock - 1] - a[clock - 1])
            elif kind_b == "eval":
                eval_times.append(b[clock - 1] - a[clock - 1])
        epoch = median(epoch_times)
        out["epoch_s" + suffix] = epoch
        out["eval_s" + suffix] = median(eval_times)
        out["setup_s" + suffix] = max(0.0, marks[1][clock] - marks[0][clock] - epoch)
    return out


def bench_sweep(epochs: int, workers: int, threads: int, check_epochs: int) -> dict:
    groups = sweep_groups()
    runs = sum(len(g) for g in groups)
    log(f"  {runs} runs in {len(groups)} jobs; timing each job for {epochs} epochs with {workers} workers × {threads} thread")
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with context.Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
        # longest jobs first so the two workers stay busy together (contention as in the real sweep)
        order = sorted(range(len(groups)), key=lambda i: -len(groups[i]) * groups[i][0].dim)
        timed = pool.map(time_group, [(groups[i], epochs) for i in order], chunksize=1)
        sample_seconds = time.perf_counter() - started
        timings = [None] * len(groups)
        for i, t in zip(order, timed):
            timings[i] = t
        # check the extrapolation: a few jobs for check_epochs epochs, measured vs predicted
        checks = []
        if check_epochs:
            picks = [g for g in groups if len(g) == 1 and g[0].noise_ratio == 0 and g[0].dataset == "umls" and g[0].dim in (100, 400)]
            jobs = [[dataclasses.replace(s, epochs=check_epochs) for s in g] for g in picks]
            measured = pool.map(_measure_run, jobs, chunksize=1)
            for g, seconds in zip(picks, measured):
                predicted = estimated_seconds(timings[groups.index(g)], check_epochs)
                checks.append({"model": g[0].model, "dim": g[0].dim, "epochs": check_epochs, "measured_s": seconds, "predicted_s": predicted})
    per_job = [estimated_seconds(t) for t in timings]
    total = sum(per_job)
    wall = schedule(per_job, workers)
    by_model: dict[str, float] = {}
    for g, seconds in zip(groups, per_job):
        key = f"{g[0].model} {g[0].dataset}"
        by_model[key] = by_model.get(key, 0.0) + seconds
    largest = max(range(len(groups)), key=lambda i: per_job[i])
    return {
        "runs": runs, "jobs": len(groups), "workers": workers, "threads": threads, "sample_epochs": epochs,
        "sample_wall_s": sample_seconds, "total_job_s": total, "estimated_wall_s": wall,
        "by_model_dataset_s": by_model, "checks": checks,
        "wall_clock_estimated_wall_s": schedule([estimated_seconds({k[:-5]: v for k, v in t.items() if k.endswith("_wall")}) for t in timings], workers),
        "largest_job": {"spec": timings[largest]["specs"][0], "stack": len(groups[largest]), "seconds": per_job[largest]},
        "timings": timings, "per_job_s": per_job,
    }


REAL_SUBSET = (("distmult", 100), ("distmult", 400), ("kd_distmult", 100), ("kd_distmult", 400))


def bench_real_subset(epochs: int = 100, workers: int = 2, timeout: float = 1800) -> dict:
    """A real timed subset of the sweep: ``train.py -m`` (the kdkge sweeper, the joblib launcher
    with ``workers`` jobs, MLflow tracking into a new store in a temporary folder, checkpoints,
    evaluations, plots: everything ``make sweep`` does) on four UMLS jobs for ``epochs`` epochs,
    against the prediction of :func:`time_group` for the same jobs.

    Returns the Σ CPU seconds of the whole command (all its processes), the predicted Σ of the
    jobs' set-up + epochs + evaluations, and what the real runs cost beyond it per job
    (``overhead_per_job_s``: store, tracking, checkpoints, plots, model selection, imports of the
    worker processes — the non-training costs the extrapolation leaves out).
    """
    import resource
    import tempfile

    from .experiment import RunSpec

    specs = [RunSpec(dataset="umls", model=m, dim=d, epochs=epochs) for m, d in REAL_SUBSET]
    predicted = []
    for spec in specs:
        timing = time_group(([spec], 3))
        predicted.append(estimated_seconds(timing, epochs))
    with tempfile.TemporaryDirectory(prefix="kdkge-bench-store-") as folder:
        env_imports = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "import torch, torch._dynamo, mlflow, hydra, matplotlib.pyplot, kdkge.app"],
                       cwd=folder, env=env_imports, capture_output=True, timeout=600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        imports = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MLFLOW_TRACKING_URI=f"sqlite:///{folder}/mlflow.db",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        models = ",".join(dict.fromkeys(m for m, _ in REAL_SUBSET))
        dims = ",".join(str(d) for d in dict.fromkeys(d for _, d in REAL_SUBSET))
        command = [sys.executable, str(REPO / "train.py"), "-m", f"model={models}", f"dim={dims}", "dataset=umls", f"epochs={epochs}",
                   "threads=1", "progress=false", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}",
                   f"hydra.sweep.dir={folder}/multirun"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    out = {"jobs": [f"{m} d={d}" for m, d in REAL_SUBSET], "epochs": epochs, "workers": workers, "returncode": done.returncode,
           "measured_cpu_s": cpu, "measured_wall_s": wall, "predicted_cpu_s": sum(predicted), "predicted_per_job_s": predicted,
           "predicted_wall_s": schedule(predicted, workers)}
    if done.returncode != 0:
        out["error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
        log(f"  real subset failed (exit {done.returncode}): {out['error']}")
        return out
    # the launcher and each worker process import torch, MLflow, Hydra, matplotlib once: a fixed cost of the whole sweep
    out["imports_cpu_s"] = imports
    out["fixed_cpu_s"] = (workers + 1) * imports
    out["overhead_per_job_s"] = max(0.0, (cpu - out["fixed_cpu_s"] - sum(predicted)) / len(specs))
    log(f"  real subset: {len(specs)} jobs × {epochs} epochs, {cpu:.1f} s CPU measured vs {sum(predicted):.1f} s predicted "
        f"→ {out['overhead_per_job_s']:.1f} s per job beyond training (+ {out['fixed_cpu_s']:.0f} s of imports); {wall:.0f} s wall")
    return out


def _measure_run(specs) -> float:
    """CPU seconds of a whole run (set-up, training, evaluations)."""
    from .experiment import run

    started = time.process_time()
    run(specs, progress=False, eval_every=EVAL_EVERY)
    return time.process_time() - started


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdkge.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=["frameworks", "floors", "kd", "stacked", "sweep"], help="run only these parts")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and epochs (a smoke test, not for quoting)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for parts 1–3 (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu (parts 2 and 3 on cpu); cuda or cuda:N runs the GPU bench instead (kdkge.bench_gpu)")
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks.md"))
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):  # the GPU bench: Tables 2 + 3 stacked, the whole paper estimated
        from .bench_gpu import main as bench_gpu

        bench_gpu(["--device", args.device] + (["--subset", "tiny", "--seeds", "1", "--epochs", "2"] if args.quick else []))
        return
    torch.set_num_threads(args.threads)
    parts = set(args.only or ["frameworks", "floors", "kd", "stacked", "sweep"])
    command = "python -m kdkge.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    quick = args.quick
    started = time.perf_counter()
    machine = machine_description()
    log("machine: " + "; ".join(f"{k}={v}" for k, v in machine.items()))
    results: dict = {}
    if "frameworks" in parts:
        log("[1/4] epoch time: kdkge vs PyKEEN vs dicee (DistMult d=289, UMLS, KvsAll)")
        results["frameworks"] = bench_frameworks(rounds=2 if quick else 5, warmup=1 if quick else 2, epochs=2 if quick else 5, threads=args.threads)
    if "floors" in parts:
        from .bench_floor import bench_floors, bench_fused_norm, bench_malloc

        log("[1b/4] epoch / floor of every strategy × paper model (UMLS, Table 2 sizes)")
        results["floors"] = bench_floors(rounds=2 if quick else 5, epochs=2 if quick else 5, log=log,
                                         profile_above=None if quick else 1.5)
        log("  levers side by side: fused BN∘Hadamard∘BN vs nn.BatchNorm1d; malloc tuning on/off")
        results["fused_norm"] = bench_fused_norm(repeats=2 if quick else 7, inner=2 if quick else 20)
        results["malloc"] = bench_malloc(rounds=1 if quick else 3)
    if "kd" in parts:
        log("[2/4] KD-DistMult closed form vs explicit reconstruction (one training step)")
        results["kd_closed_form"] = bench_kd_closed_form(repeats=3 if quick else 7, device=args.device)
    if "stacked" in parts:
        log("[3/4] 5 calibrations stacked vs 5 sequential runs")
        results["stacked_epochs"] = 2 if quick else 10
        results["stacked"] = bench_stacked(results["stacked_epochs"], repeats=1 if quick else 3, device=args.device)
    if "sweep" in parts:
        log("[4/4] Tables 2-6 sweep: time every job for a few epochs, extrapolate to 1000 epochs")
        results["sweep"] = sw = bench_sweep(epochs=3, workers=2, threads=1, check_epochs=0 if quick else 100)
        log("  real timed subset: train.py -m through the sweeper and joblib, tracking to a temporary store")
        real = results["real_subset"] = bench_real_subset(epochs=3 if quick else 100)
        if "overhead_per_job_s" in real:  # the estimate with the measured non-training costs of real runs
            with_overhead = [d + real["overhead_per_job_s"] for d in sw["per_job_s"]]
            sw["overhead_per_job_s"] = real["overhead_per_job_s"]
            sw["total_with_overhead_s"] = sum(with_overhead) + real["fixed_cpu_s"]
            sw["estimated_wall_with_overhead_s"] = schedule(with_overhead, 2) + real["fixed_cpu_s"] / 2
    elapsed = time.perf_counter() - started
    text = write_report(Path(args.out), command.strip(), machine, results, elapsed)
    print()
    print(text)


if __name__ == "__main__":
    main()
