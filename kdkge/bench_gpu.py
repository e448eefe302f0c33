"""``python -m kdkge.bench_gpu`` (``make bench-gpu``): the paper's runs on one GPU, timed and extrapolated.

1. **Tables 2 + 3, stacked.**  For each dataset and model at the Table 2/3 size, the five
   calibrations (none, LS .1/.2, LR .1/.2) × ``--seeds`` seeds train as *one* stacked model (one
   configuration per slice; results equal separate runs, ``tests/test_fast_paths.py``), for
   ``--epochs`` epochs after one warm-up epoch; the epoch time of each stack is printed.
2. **The whole paper.**  Every job of the Tables 2–6 sweep (``kdkge.bench.sweep_groups``: 126
   jobs, 252 runs per protocol) is timed for a few epochs on the device by ``--workers`` processes
   sharing it, and its 1000-epoch time extrapolated; the estimate for both protocols is the
   longest-first schedule of those times on the workers.
3. Both go to ``results/benchmarks_gpu.md`` (``--out``) with the device's name.

On a CPU the same code runs (``--device cpu``): the test suite times a tiny subset this way
(``--subset tiny``), so the GPU path is exercised before a GPU is lent.  Nothing here changes
float results: float32 as everywhere (TF32 matmuls are off in PyTorch by default).
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import statistics
import time
from pathlib import Path

import torch

from .paths import REPO_ROOT
from .bench_plan import CALIBRATIONS, DATASETS, EPOCHS, MODELS, TABLE23_DIM, estimated_seconds, schedule, sweep_groups

REPO = REPO_ROOT
PROTOCOLS = ("paper_code", "paper_text")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def table23_stacks(seeds: int, epochs: int, datasets=DATASETS, models=MODELS, protocol: str = "paper_code") -> list[list]:
    """One stack per dataset × model: 5 calibrations × ``seeds`` seeds at the Table 2/3 size."""
    from .experiment import RunSpec

    return [[RunSpec(dataset=d, model=m, dim=TABLE23_DIM[m], epochs=epochs, calibration=c, alpha=a, seed=s, protocol=protocol)
             for c, a in CALIBRATIONS for s in range(1, seeds + 1)] for d in datasets for m in models]


def time_stack(specs: list, device: str) -> dict:
    """Wall seconds per epoch (median over the epochs after the first) of one stacked job."""
    from .experiment import run

    stamps: list[float] = []

    def on_epoch(epoch, losses):
        _sync(device)
        stamps.append(time.perf_counter())

    _sync(device)
    start = time.perf_counter()
    run(specs, device=device, progress=False, eval_every=0, eval_splits=("test",), on_epoch=on_epoch)
    _sync(device)
    total = time.perf_counter() - start
    epochs = [b - a for a, b in zip(stamps, stamps[1:])] or [total]
    return {"epoch_s": statistics.median(epochs), "total_s": total, "setup_s": max(0.0, stamps[0] - start - statistics.median(epochs)) if stamps else total}


def _time_job(task) -> dict:
    specs, epochs, device = task
    timing = time_stack([dataclasses.replace(s, epochs=epochs) for s in specs], device)
    return {"runs": len(specs), "model": specs[0].model, "dim": specs[0].dim, "dataset": specs[0].dataset, **timing,
            "eval_s": timing["epoch_s"]}  # an evaluation costs about one epoch (scoring all tails once)


def whole_paper(device: str, workers: int, epochs: int, subset: str) -> dict:
    """Every job of Tables 2–6 (per protocol) timed for ``epochs`` epochs on ``workers`` processes."""
    groups = sweep_groups() if subset == "full" else [sweep_groups()[0]]
    tasks = [(g, epochs, device) for g in groups]
    started = time.perf_counter()
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            timings = pool.map(_time_job, tasks, chunksize=1)
    else:
        timings = [_time_job(t) for t in tasks]
    sample = time.perf_counter() - started
    per_job = [estimated_seconds(t, EPOCHS) for t in timings]
    one_protocol = schedule(per_job, workers)
    return {"jobs": len(groups), "runs": sum(len(g) for g in groups), "workers": workers, "sample_epochs": epochs,
            "sample_wall_s": sample, "job_seconds": sum(per_job), "one_protocol_wall_s": one_protocol,
            "both_protocols_wall_s": schedule(per_job * len(PROTOCOLS), workers), "subset": subset}


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "cpu")


def write_report(path: Path, command: str, device: str, stacks: list[dict], paper: dict) -> str:
    lines = ["# GPU benchmark", "", f"Command: `{command}`; device: **{device_name(device)}** (`{device}`); "
             f"torch {torch.__version__}; written {time.strftime('%Y-%m-%d %H:%M %Z')}.", "",
             "## Tables 2 + 3 stacked (calibrations × seeds in one model)", "",
             "| dataset | model | d | runs in the stack | epoch time | 1000 epochs |", "| --- | --- | --- | --- | --- | --- |"]
    for s in stacks:
        lines.append(f"| {s['dataset']} | {s['model']} | {s['dim']} | {s['runs']} | {s['epoch_s'] * 1000:.1f} ms | {s['epoch_s'] * EPOCHS:.0f} s |")
    lines += ["", "## The whole paper (Tables 2–6)", "",
              f"{paper['jobs']} jobs / {paper['runs']} runs per protocol ({paper['subset']}), each timed for {paper['sample_epochs']} "
              f"epochs by {paper['workers']} worker processes sharing the device ({paper['sample_wall_s']:.0f} s), 1000 epochs extrapolated "
              "(an evaluation every 100 epochs, set-up included):", "",
              f"- one protocol: **{paper['one_protocol_wall_s'] / 60:.1f} min**",
              f"- both protocols (paper_code and paper_text): **{paper['both_protocols_wall_s'] / 60:.1f} min** "
              "(goal on one H100/H200-class GPU: ≤ 10 min)", ""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per calibration in each Table 2/3 stack")
    parser.add_argument("--epochs", type=int, default=20, help="timed epochs per stack and per sweep job")
    parser.add_argument("--workers", type=int, default=4, help="processes sharing the device for the whole-paper estimate")
    parser.add_argument("--subset", choices=("full", "tiny"), default="full", help="tiny: one dataset, one model, one job (tests)")
    parser.add_argument("--out", default=str(REPO / "results" / "benchmarks_gpu.md"))
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.epochs < 2 or args.workers < 1:
        parser.error("--seeds and --workers must be ≥ 1 and --epochs ≥ 2")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, "error: --device cuda but no CUDA GPU is available here: use --device cpu (or run it where a GPU is)\n")
    tiny = args.subset == "tiny"
    stacks = table23_stacks(args.seeds, args.epochs, datasets=DATASETS[:1] if tiny else DATASETS, models=MODELS[:1] if tiny else MODELS)
    timed = []
    for specs in stacks:
        t = time_stack(specs, args.device)
        timed.append({"dataset": specs[0].dataset, "model": specs[0].model, "dim": specs[0].dim, "runs": len(specs), **t})
        print(f"{specs[0].dataset} {specs[0].model} d={specs[0].dim}: {len(specs)} runs stacked, "
              f"{t['epoch_s'] * 1000:.1f} ms per epoch", flush=True)
    paper = whole_paper(args.device, args.workers, args.epochs, args.subset)
    print(f"whole paper: one protocol {paper['one_protocol_wall_s'] / 60:.1f} min, both {paper['both_protocols_wall_s'] / 60:.1f} min "
          f"({paper['jobs']} jobs timed on {paper['workers']} workers)", flush=True)
    command = "python -m kdkge.bench_gpu " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    write_report(Path(args.out), command.strip(), args.device, timed, paper)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
