"""Equal-budget comparisons (issue 18): the DistMult (or KD-Rel-DistMult) whose |Θ| is closest to a
KD model's, and the sweep file that trains them.

The paper compares KD-DistMult (d = 256, 3,728 parameters on UMLS) with a DistMult of 67,915
parameters; a plain DistMult of width 16 has about as many parameters as that KD-DistMult.  Here
every |Θ| is computed from a built model (``num_parameters``) on the dataset's vocabulary under the
chosen protocol, so the budgets are exact.

    python -m kdkge.equal_budget                 # print the equal-budget sizes of Table 2's KD models
    python -m kdkge.equal_budget --write         # (re)write sweeps/equal_budget.yaml
    python -m kdkge.equal_budget --model kd_rel_distmult --dim 100 --dataset kinship   # any model and size

A model without a size rule (:data:`SIZE_RULES`) is a one-line error naming the models there are.
The report (``results/equal_budget.*``, written by ``make tables``) is :mod:`kdkge.reports.equal_budget`.
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import lru_cache

from .models import build_model
from .paths import REPO_ROOT
from .reports.paper import DATASETS, TABLE2_DIMS

REPO = REPO_ROOT
#: Models the search can size, and the widths each accepts: any positive integer, or perfect squares.
SIZE_RULES = {"distmult": "any", "kd_rel_distmult": "square", "kd_distmult": "square", "scaled_distmult": "square",
              "complex": "even", "kd_rel_complex": "square", "kd_complex": "square"}
#: Table 2's KD models and sizes (the paper's, recovered from its parameter counts), in the sweep's order.
TABLE2_KD = {(dataset, model): TABLE2_DIMS[dataset, model]
             for dataset in DATASETS for model in ("kd_distmult", "kd_rel_distmult")}
SEEDS = (1, 2, 3, 4, 5)


@lru_cache(maxsize=None)
def vocabulary(dataset: str, protocol: str) -> tuple[int, int]:
    """(|E|, |R| embedded) of a dataset under a protocol."""
    if protocol == "paper_code":
        from .data_2022 import load_dataset_2022

        kg = load_dataset_2022(dataset)
    else:
        from .data import load_dataset

        kg = load_dataset(dataset)
    return kg.num_entities, kg.num_relations


def parameters(model: str, dim: int, dataset: str, protocol: str, **options) -> int:
    entities, relations = vocabulary(dataset, protocol)
    return build_model(model, entities, relations, dim, **options).num_parameters


def check_model(model: str) -> None:
    """A one-line ``ValueError`` naming the choices unless ``model`` has a size rule."""
    if model not in SIZE_RULES:
        raise ValueError(f"model {model!r} has no size rule for an equal-budget search: use one of {', '.join(SIZE_RULES)}")


def widths(model: str, limit: int) -> list[int]:
    check_model(model)
    rule = SIZE_RULES[model]
    if rule == "square":
        return [k * k for k in range(1, math.isqrt(limit) + 1)]
    return list(range(2 if rule == "even" else 1, limit + 1, 2 if rule == "even" else 1))


def closest_width(model: str, budget: int, dataset: str, protocol: str = "paper_code") -> tuple[int, int]:
    """The width of ``model`` whose |Θ| is closest to ``budget`` (ties: the smaller), and that |Θ|."""
    best = None
    for dim in widths(model, 4 * budget):
        count = parameters(model, dim, dataset, protocol)
        if best is None or abs(count - budget) < abs(best[1] - budget):
            best = (dim, count)
        if count > 2 * budget:
            break
    return best


def budget_row(dataset: str, model: str, dim: int, protocol: str = "paper_code") -> dict:
    """A model at a size, its |Θ|, and the (width, |Θ|) of each other paper model closest to it."""
    check_model(model)
    budget = parameters(model, dim, dataset, protocol)
    row = {"dataset": dataset, "model": model, "dim": dim, "params": budget}
    for peer in ("distmult", "kd_rel_distmult", "kd_distmult"):
        if peer != model:
            row[peer] = closest_width(peer, budget, dataset, protocol)
    return row


def plan(protocol: str = "paper_code") -> list[dict]:
    """Per Table 2 KD model: its size and |Θ|, and the equal-budget DistMult and KD-Rel-DistMult."""
    return [budget_row(dataset, model, dim, protocol) for (dataset, model), dim in TABLE2_KD.items()]


def sweep_yaml(rows: list[dict]) -> str:
    lines = ["# @package _global_",
             "# Equal-budget comparison (issue 18), written by `python -m kdkge.equal_budget --write` — do not edit by hand.",
             "# For each KD model of Table 2: the model itself, the DistMult / KD-Rel-DistMult / KD-DistMult whose |Θ| is",
             "# closest (computed from the models on the paper_code vocabulary), and scaled_distmult's three variants at",
             "# KD-DistMult's size; seeds 1-5, no calibration, clean data. Under either protocol:",
             "#   make sweep SWEEP=equal_budget [ARGS=protocol=paper_text]",
             "hydra:", "  sweeper:", "    params:", "      calibration: none", "      noise_ratio: 0.0",
             f"      seed: {','.join(map(str, SEEDS))}", "    grids:"]
    seen = set()
    for row in rows:
        entries = [(row["model"], row["dim"])] + [(peer, row[peer][0]) for peer in ("distmult", "kd_rel_distmult", "kd_distmult") if peer in row]
        for model, dim in entries:
            if (row["dataset"], model, dim) not in seen:
                seen.add((row["dataset"], model, dim))
                lines.append(f"      - {{dataset: {row['dataset']}, model: {model}, dim: {dim}}}")
        if row["model"] == "kd_distmult":
            lines.append(f"      - {{dataset: {row['dataset']}, model: scaled_distmult, dim: {row['dim']}, "
                         f"model.options.variant: \"dot,abs,temperature\"}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="paper_code", choices=("paper_code", "paper_text"))
    parser.add_argument("--write", action="store_true", help="write sweeps/equal_budget.yaml")
    parser.add_argument("--model", help=f"print the equal-budget sizes of this model instead ({', '.join(SIZE_RULES)})")
    parser.add_argument("--dim", type=int, help="its size (with --model)")
    parser.add_argument("--dataset", default="umls", help="its dataset (with --model; default: %(default)s)")
    args = parser.parse_args(argv)
    if args.model is not None:
        try:
            check_model(args.model)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.dim is None:
            print("error: --model needs --dim (the model's size)", file=sys.stderr)
            return 2
    rows = [budget_row(args.dataset, args.model, args.dim, args.protocol)] if args.model else plan(args.protocol)
    for row in rows:
        peers = ", ".join(f"{p} d={row[p][0]} ({row[p][1]:,})" for p in ("distmult", "kd_rel_distmult", "kd_distmult") if p in row)
        print(f"{row['dataset']:8s} {row['model']:16s} d={row['dim']:<4d} |Θ| = {row['params']:,}  ≈  {peers}")
    if args.write:
        path = REPO / "sweeps" / "equal_budget.yaml"
        path.write_text(sweep_yaml(plan("paper_code")))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
