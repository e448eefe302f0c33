"""Fake runs for synthetic MLflow stores (tests of the tables and the run record).

The runs are fake (made-up metrics, no training) but structurally real: the schema's tag and
metric names, the tracker's experiments/params/statuses, and |Θ| from the actual models.
"""

from __future__ import annotations

import time

from kdkge.models import build_model
from kdkge.tracking import MlflowTracker, config_hash

# entities, relations (with reciprocals) of our copies of the datasets
COUNTS = {"umls": (135, 92), "kinship": (104, 50)}
# the authors' 2022 vocabulary (protocol paper_code): one NaN entity and relation more
COUNTS_2022 = {"umls": (136, 94), "kinship": (105, 52)}


def _split_metrics(split: str, mrr: float) -> dict[str, float]:
    return {f"{split}_mrr": mrr, f"{split}_hits_1": mrr - 0.08, f"{split}_hits_3": min(mrr + 0.03, 1.0),
            f"{split}_hits_10": min(mrr + 0.15, 1.0)}


def log_run(uri, dataset, model, dim, test_mrr, *, valid_mrr=None, train_mrr=0.95, calibration="none",
            alpha=None, noise=0.0, epochs=1000, seed=1, status="FINISHED", protocol=None, loss=None,
            paper_test_mrr=None, best=None, losses=None):
    """One run as the Hydra app logs it: schema tags, nested params, split metrics, num_parameters.

    ``protocol=None``: a run recorded before protocols existed (no protocol/loss tags). Otherwise
    the tags ``protocol`` and ``loss`` (default: the protocol's loss). ``paper_test_mrr``: the
    authors' 2022 split (paper_code runs); ``best``: ``(epoch, valid_mrr, test_mrr[, paper_test_mrr])``
    of the best-validation model; ``losses``: the per-epoch loss, logged at steps 1, 2, …
    """
    tracker = MlflowTracker(uri, experiment=f"kdkge-{dataset}")
    cfg = {"dataset": {"name": dataset}, "model": model, "dim": dim,  # the Hydra app's layout
           "calibration": {"name": calibration, "alpha": alpha}, "noise_ratio": noise, "seed": seed,
           "epochs": epochs, "lr": 0.01, "batch_size": 1024}
    kd = model == "kd_distmult"
    tags = {"model": model, "dataset": dataset, "calibration": calibration,
            "alpha": "" if alpha is None else str(alpha), "noise_ratio": str(noise), "dim": dim,
            "stored_dim": int(dim ** 0.5) if kd else dim, "seed": seed, "strategy": "1vsall",
            "epochs": epochs, "sweep_id": "", "git_commit": "test"}
    if protocol is not None:
        loss = loss or {"paper_code": "softmax_ce", "paper_text": "bce"}[protocol]
        cfg |= {"protocol": {"name": protocol}, "loss": {"name": loss}}
        tags |= {"protocol": protocol, "loss": loss}
    tags["config_hash"] = config_hash(cfg)
    e, r = (COUNTS_2022 if protocol == "paper_code" else COUNTS)[dataset]
    metrics = {"num_parameters": build_model(model, e, r, dim).num_parameters, "wall_time_s": 60.0}
    metrics |= _split_metrics("train", train_mrr) | _split_metrics("test", test_mrr)
    metrics |= _split_metrics("valid", test_mrr if valid_mrr is None else valid_mrr)
    if paper_test_mrr is not None:
        metrics |= _split_metrics("paper_test", paper_test_mrr)
    if best is not None:
        metrics["best_epoch"] = best[0]
        metrics |= {f"best_{k}": v for k, v in _split_metrics("valid", best[1]).items()}
        metrics |= {f"best_{k}": v for k, v in _split_metrics("test", best[2]).items()}
        if len(best) > 3:
            metrics |= {f"best_{k}": v for k, v in _split_metrics("paper_test", best[3]).items()}
    tracker.start_run(f"{model}-{dataset}-{dim}", tags=tags, params=cfg)
    if losses:
        tracker.log_metric_steps([(i, {"loss": v}) for i, v in enumerate(losses, start=1)])
    tracker.log_metrics(metrics, step=epochs)
    tracker.end_run(status)
    time.sleep(0.005)  # distinct start times: "newest" is well defined
    return tracker
