"""Runs as rows of ``mlflow.search_runs`` (what :func:`kdkge.reports.runs.fetch_runs` returns), without a store.

Fast fakes for the report builders: the tags, params and metrics a training run logs, with
made-up metrics. ``raw_frame(rows)`` → the DataFrame :func:`kdkge.reports.runs.normalise_runs` takes.
"""

from __future__ import annotations

import itertools

import pandas as pd

_IDS = itertools.count(1)
_T0 = pd.Timestamp("2026-01-01", tz="UTC")

# |E| + |R| of the vocabularies (fake_runs.COUNTS / COUNTS_2022), for a plausible |Θ|
_VOCAB = {("umls", "paper_code"): 136 + 94, ("umls", "paper_text"): 135 + 92,
          ("kinship", "paper_code"): 105 + 52, ("kinship", "paper_text"): 104 + 50}


def fake_params(model: str, dim: int, dataset: str, protocol: str) -> float:
    """A made-up but monotone |Θ|: DistMult-like (|E|+|R|)·d, KD models at √d."""
    width = dim if model == "distmult" else int(round(dim ** 0.5))
    return float(_VOCAB[dataset, protocol] * width + 4 * width)


def raw_run(dataset: str, model: str, dim: int, *, seed: int = 1, test_mrr: float = 0.5, paper_test_mrr: float | None = None,
            protocol: str = "paper_code", epochs: int = 1000, calibration: str = "none", noise: float = 0.0,
            variant: str | None = None, params: float | None = None, status: str = "FINISHED",
            hits: tuple[float, float, float] | None = None) -> dict:
    """One row; ``hits``: test Hits@1/3/10 (default: MRR −.1, MRR, MRR +.1; paper_test's from its MRR alike)."""
    i = next(_IDS)
    h1, h3, h10 = hits or (test_mrr - 0.1, test_mrr, test_mrr + 0.1)
    loss = {"paper_code": "softmax_ce", "paper_text": "bce"}[protocol]
    row = {"run_id": f"run{i:05d}", "status": status, "start_time": _T0 + pd.Timedelta(seconds=i),
           "experiment": f"kdkge-{dataset}",
           "tags.model": model, "tags.dataset": dataset, "tags.dim": str(dim), "tags.seed": str(seed),
           "tags.calibration": calibration, "tags.alpha": "", "tags.noise_ratio": str(noise), "tags.epochs": str(epochs),
           "tags.strategy": "1vsall", "tags.protocol": protocol, "tags.loss": loss,
           "tags.config_hash": f"{dataset}-{model}-{dim}-{seed}-{protocol}-{epochs}-{calibration}-{noise}-{variant}",
           "params.lr": "0.01", "params.batch_size": "1024", "params.epochs": str(epochs), "params.seed": str(seed),
           "metrics.num_parameters": params if params is not None else fake_params(model, dim, dataset, protocol),
           "metrics.test_mrr": test_mrr, "metrics.test_hits_1": h1, "metrics.test_hits_3": h3,
           "metrics.test_hits_10": h10, "metrics.valid_mrr": test_mrr}
    if variant is not None:
        row["params.model.options.variant"] = variant
    if paper_test_mrr is not None:
        p1, p3, p10 = hits or (paper_test_mrr - 0.1, paper_test_mrr, paper_test_mrr + 0.1)
        row |= {"metrics.paper_test_mrr": paper_test_mrr, "metrics.paper_test_hits_1": p1,
                "metrics.paper_test_hits_3": p3, "metrics.paper_test_hits_10": p10}
    return row


def raw_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)
