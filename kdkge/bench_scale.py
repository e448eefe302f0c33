"""``python -m kdkge.bench_scale`` (``make bench-scale``): a graph with 10⁶ entities on this machine.

Peak memory and epoch time of KD-DistMult against DistMult at the same embedding size d on a
synthetic graph (default: 10⁶ entities, 1 000 relations, 10⁷ triples drawn uniformly with a fixed
seed; with reciprocals 2·10⁷ training data points, 19 532 batches of 1 024 per epoch):

1. negative sampling (``loss=negsamp``, k negatives per data point) with sparse gradients and lazy
   Adam (``loss.sparse=true``): one whole epoch, timed;
2. negative sampling with ordinary (dense) Adam: every step updates the whole embedding matrices,
   so only ``--dense-steps`` steps are timed and the epoch time is extrapolated (stated as such);
3. 1vsAll, the paper's protocol: a step scores all 10⁶ entities (a ``[1024, 10⁶]`` score matrix);
   ``--onevsall-steps`` steps are timed and the epoch extrapolated.

Each configuration runs in its own process, so its peak resident memory (``ru_maxrss``) is its own:
the graph and its training labels, the model, the optimizer state and the step's tensors.  The
memory of the data alone is measured before the model is built.  Results go to
``results/scale.md`` (and ``.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from .paths import REPO_ROOT

REPO = REPO_ROOT
MODELS = ("kd_distmult", "distmult")
#: glibc serves allocations above 32 MiB with fresh mmap()s, returned on free: every step of
#: DistMult at 10⁶ entities then page-faults its ~36 MiB gather buffers anew (measured: 2.4× slower
#: steps, much of it system time).  The workers keep freed memory on the heap instead.
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(16 << 30)}


def rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_triples(entities: int, relations: int, triples: int, seed: int = 0) -> torch.Tensor:
    """``[triples, 3]`` uniform random (h, r, t) — a stand-in for a large graph's size, not its structure."""
    gen = torch.Generator().manual_seed(seed)
    heads = torch.randint(entities, (triples,), generator=gen)
    rels = torch.randint(relations, (triples,), generator=gen)
    tails = torch.randint(entities, (triples,), generator=gen)
    return torch.stack([heads, rels, tails], dim=1)


def worker(args: argparse.Namespace) -> dict:
    """One configuration in this process: build the data, train ``--steps`` steps (0 = a whole epoch)."""
    from .data import training_labels, with_reciprocals
    from .losses import build_loss
    from .models import build_model
    from .training import train_epochs

    torch.set_num_threads(args.threads)
    triples = with_reciprocals(synthetic_triples(args.entities, args.relations, args.triples), args.relations)
    labels = training_labels(triples, "1vsall")
    del triples
    points = len(labels)
    if args.steps:  # a prefix of the data: an "epoch" of exactly `steps` batches costs what `steps` steps cost
        n = args.steps * args.batch_size
        labels = type(labels)(labels.queries[:n], labels.offsets[: n + 1], labels.tails[:n])
    data_mib = rss_mib()
    model = build_model(args.model, args.entities, 2 * args.relations, args.dim)
    model.reset_parameters([1])
    negatives = args.negatives if args.strategy == "negsamp" else 0
    marks = [(time.perf_counter(), time.process_time())]
    # a whole epoch amortises the first steps' allocations; a few steps are timed after a warm-up epoch
    train_epochs(
        model, labels, [build_loss()], epochs=2 if args.steps else 1, batch_size=args.batch_size, lr=0.01,
        seeds=[1], device=torch.device("cpu"), progress=False, num_negatives=negatives, sparse=args.sparse,
        on_epoch_end=lambda *_: marks.append((time.perf_counter(), time.process_time())),
    )
    seconds, cpu_seconds = marks[-1][0] - marks[-2][0], marks[-1][1] - marks[-2][1]
    steps = -(-len(labels) // args.batch_size)
    steps_per_epoch = -(-points // args.batch_size)
    return {
        "model": args.model, "strategy": args.strategy, "sparse": args.sparse, "dim": args.dim,
        "stored_width": model.stored_width, "num_parameters": model.num_parameters,
        "data_points": points, "steps_timed": steps, "steps_per_epoch": steps_per_epoch,
        "seconds": seconds, "cpu_seconds": cpu_seconds, "seconds_per_step": seconds / steps,
        "epoch_seconds": seconds / steps * steps_per_epoch,
        "extrapolated": steps < steps_per_epoch,
        "peak_mib": rss_mib(), "data_mib": data_mib,
    }


def run_worker(base: list[str], model: str, strategy: str, sparse: bool, steps: int, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "kdkge.bench_scale", "--worker", "--model", model, "--strategy", strategy,
           "--steps", str(steps), *base] + (["--sparse"] if sparse else [])
    print(f"  {model:12s} {strategy}{' sparse' if sparse else ''}: {'a whole epoch' if not steps else f'{steps} steps'} …", flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO, env={**os.environ, **MALLOC_ENV})
    except subprocess.TimeoutExpired:
        print(f"    did not finish within {timeout:.0f} s", flush=True)
        return {"model": model, "strategy": strategy, "sparse": sparse, "error": f"did not finish within {timeout:.0f} s"}
    if proc.returncode != 0:  # e.g. killed for memory: a row of the report, not the end of the benchmark
        reason = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:200]
        if proc.returncode < 0:
            reason = f"killed by signal {-proc.returncode} (out of memory?)"
        print(f"    failed: {reason}", flush=True)
        return {"model": model, "strategy": strategy, "sparse": sparse, "error": reason}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"    {result['epoch_seconds']:.1f} s/epoch{' (extrapolated)' if result['extrapolated'] else ''}, "
          f"peak {result['peak_mib']:.0f} MiB", flush=True)
    return result


def fmt_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def epoch_cpu(result: dict) -> float:
    """CPU seconds of an epoch: measured, or extrapolated from the timed steps."""
    return result["cpu_seconds"] / result["steps_timed"] * result["steps_per_epoch"]


def write_report(path: Path, args: argparse.Namespace, results: list[dict], elapsed: float, command: str) -> str:
    from .bench import machine_description

    machine = machine_description()
    lines = [
        "# A graph with 10⁶ entities: KD-DistMult vs DistMult",
        "",
        f"Command: `{command}` — took {elapsed / 60:.1f} min; written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Synthetic graph: {args.entities:,} entities, {args.relations:,} relations, {args.triples:,} triples drawn "
        f"uniformly (seed 0); with reciprocals {2 * args.triples:,} training data points, batch {args.batch_size}, "
        f"Adam lr 0.01, BCE (Eq. 2), {args.threads} torch thread(s), d = {args.dim} for both models "
        f"(KD-DistMult stores √d = {int(round(args.dim ** 0.5))}-wide vectors). Negative sampling draws "
        f"k = {args.negatives} uniform negatives per data point. Each row is its own process; peak memory is its "
        "peak resident set size (data, labels, model, optimizer state, step tensors); \"data\" is the process "
        "before the model was built. The workers run with glibc's `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=17179869184` "
        "(freed buffers stay on the heap instead of being unmapped and page-faulted anew every step).",
        "",
        "Epoch time is the worker's CPU time (one thread: what the epoch costs on a core of its own; the machine is "
        "shared); wall-clock time is in the next column.",
        "",
        "| model | training | \\|Θ\\| | peak memory | of which data | epoch time (CPU) | wall clock | measured |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    names = {"kd_distmult": "KD-DistMult", "distmult": "DistMult"}
    for r in results:
        training = {"negsamp": f"negative sampling (k = {args.negatives})", "1vsall": "1vsAll"}[r["strategy"]]
        training += ", sparse Adam" if r["sparse"] else ", dense Adam"
        if "error" in r:
            lines.append(f"| {names.get(r['model'], r['model'])} | {training} | | | | — | — | failed: {r['error']} |")
            continue
        measured = (f"{r['steps_timed']:,} of {r['steps_per_epoch']:,} steps after a warm-up, extrapolated" if r["extrapolated"]
                    else f"whole epoch ({r['steps_per_epoch']:,} steps)")
        lines.append(
            f"| {names.get(r['model'], r['model'])} | {training} | {r['num_parameters']:,} | {r['peak_mib'] / 1024:.2f} GiB "
            f"| {r['data_mib'] / 1024:.2f} GiB | {fmt_time(epoch_cpu(r))} | {fmt_time(r['epoch_seconds'])} | {measured} |"
        )
    by = {(r["model"], r["strategy"], r["sparse"]): r for r in results if "error" not in r}
    ratios = []
    for key, label in ((("negsamp", True), "negative sampling, sparse Adam"), (("negsamp", False), "negative sampling, dense Adam"),
                       (("1vsall", False), "1vsAll")):
        kd, dm = by.get(("kd_distmult", *key)), by.get(("distmult", *key))
        if kd and dm:
            ratios.append(
                f"- {label}: KD-DistMult uses {dm['peak_mib'] / kd['peak_mib']:.1f}× less peak memory "
                f"({(dm['peak_mib'] - dm['data_mib']) / max(kd['peak_mib'] - kd['data_mib'], 1):.1f}× less beyond the data) "
                f"and trains an epoch {epoch_cpu(dm) / epoch_cpu(kd):.1f}× faster (CPU time)."
            )
    lines += ["", "Ratios (same run, same machine):", "", *ratios, ""]
    lines += ["## Machine", ""] + [f"- {k}: {v}" for k, v in machine.items()] + [""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.with_suffix(".json").write_text(json.dumps({"args": vars(args), "results": results, "elapsed": elapsed,
                                                     "command": command}, indent=2))
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kdkge.bench_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--relations", type=int, default=1_000)
    parser.add_argument("--triples", type=int, default=10_000_000)
    parser.add_argument("--dim", type=int, default=256, help="embedding size d of both models (a square)")
    parser.add_argument("--negatives", type=int, default=32, help="k: negatives per data point")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dense-steps", type=int, default=20, help="steps timed with dense Adam (0 = skip)")
    parser.add_argument("--onevsall-steps", type=int, default=2, help="steps timed with 1vsAll (0 = skip)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per configuration")
    parser.add_argument("--out", default=str(REPO / "results" / "scale.md"))
    parser.add_argument("--report-from", default=None, help="rewrite the report from this JSON of an earlier run, measure nothing")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="kd_distmult", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="negsamp", help=argparse.SUPPRESS)
    parser.add_argument("--sparse", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    if args.report_from:
        saved = json.loads(Path(args.report_from).read_text())
        old = argparse.Namespace(**saved["args"])
        command = saved.get("command", "python -m kdkge.bench_scale")
        print(write_report(Path(args.out), old, saved["results"], saved.get("elapsed", 0.0), command))
        return
    if int(round(args.dim ** 0.5)) ** 2 != args.dim:
        parser.error(f"--dim={args.dim} must be a square (KD-DistMult stores √d-wide vectors)")
    base = ["--entities", str(args.entities), "--relations", str(args.relations), "--triples", str(args.triples),
            "--dim", str(args.dim), "--negatives", str(args.negatives), "--batch-size", str(args.batch_size),
            "--threads", str(args.threads)]
    plan = [(m, "negsamp", True, 0) for m in MODELS]
    if args.dense_steps:
        plan += [(m, "negsamp", False, args.dense_steps) for m in MODELS]
    if args.onevsall_steps:
        plan += [(m, "1vsall", False, args.onevsall_steps) for m in MODELS]
    started = time.perf_counter()
    print(f"kdkge scale benchmark: {args.entities:,} entities, {args.triples:,} triples, d = {args.dim} ({platform.node()})", flush=True)
    results = [run_worker(base, *item, timeout=args.timeout) for item in plan]
    command = "python -m kdkge.bench_scale" + (" " + " ".join(argv) if argv else " " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    text = write_report(Path(args.out), args, results, time.perf_counter() - started, command.strip())
    print(text)


if __name__ == "__main__":
    main()
