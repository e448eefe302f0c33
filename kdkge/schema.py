"""Names under which a run is recorded in MLflow — the single contract between training
(``kdkge.app``), sweeps (``kdkge.sweeps``) and the tables (``kdkge.tables``).

Metrics:  ``{split}_{metric}`` with split ∈ train/valid/test and metric ∈ mrr, hits_1, hits_3,
hits_10 (realistic ranks), plus ``optimistic_``/``pessimistic_`` variants; ``loss`` per epoch;
``num_parameters`` (computed from the model); ``wall_time_s``; ``epochs_per_s``.
Tags: see :data:`RUN_TAGS`.

Grouped copies (:data:`GROUPED_METRICS`): the headline numbers are logged a second time under
``<group>/<name>`` names (``train/loss``, ``valid/mrr``, ``test/mrr``, ``test/paper_mrr``), because
MLflow's run page groups charts by the prefix before ``/`` and shows the groups (sorted) before the
ungrouped "Model metrics".  The flat names stay the contract every reader uses.
"""

SPLITS = ("train", "valid", "test")
RANK_METRICS = ("mrr", "hits_1", "hits_3", "hits_10")

# tag name -> meaning
RUN_TAGS = {
    "model": "registered model name: distmult | kd_rel_distmult | kd_distmult | ...",
    "dataset": "dataset name (umls, kinship, nations, or the custom folder's name)",
    "dataset_source": "absolute folder the split files were read from",
    "dataset_fingerprint": "SHA-256 over the SHA-256 of train.txt, valid.txt, test.txt (in the config hash for custom datasets)",
    "calibration": "none | ls | lr",
    "alpha": "α of ls/lr as a string ('' for none)",
    "noise_ratio": "fraction of noisy training triples added (Sec. 6.3), e.g. '0.0' or '0.1'",
    "dim": "embedding size d",
    "stored_dim": "width of the stored entity vectors (√d for KD-DistMult)",
    "seed": "random seed",
    "strategy": "1vsall | kvsall | negsamp",
    "protocol": "paper_code | paper_text (runs without this tag were recorded before protocols existed: paper_text)",
    "loss": "bce | softmax_ce (runs without this tag: bce)",
    "epochs": "number of training epochs",
    "config_hash": "hash of the resolved config minus non-semantic keys (paths, device, tracking)",
    "sweep_id": "id shared by all runs of one sweep ('' for a single run)",
    "git_commit": "commit of the code that ran",
    "overrides": "the Hydra override string",
}


#: The authors' 2022 test split by row group (:mod:`kdkge.split_2022`): true test triples, inverse
#: rows whose tail is a validation subject, and (NaN, NaN, ·) rows; ``paper_test_nan_chance_mrr`` is
#: the NaN rows' MRR under scores that carry no information.  Logged by paper_code runs.
PAPER_TEST_GROUPS = ("true", "inverse", "nan")
PAPER_TEST_GROUP_METRICS = tuple(f"paper_test_{g}_{m}" for g in PAPER_TEST_GROUPS for m in ("mrr", "hits_1", "hits_3", "hits_10")) \
    + ("paper_test_nan_chance_mrr",)
#: The NaN rows' lottery redrawn (:mod:`kdkge.lottery_2022`): the NaN-row MRR over redraws of the
#: never-trained NaN relation vector — mean, these percentiles, maximum, and the number of draws.
PAPER_TEST_LOTTERY_QUANTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def lottery_quantile_metric(p: int) -> str:
    """The metric of the lottery's ``p``-th percentile: ``paper_test_nan_lottery_mrr_q05`` …"""
    return f"paper_test_nan_lottery_mrr_q{p:02d}"


PAPER_TEST_LOTTERY_MEAN = "paper_test_nan_lottery_mrr_mean"
PAPER_TEST_LOTTERY_MAX = "paper_test_nan_lottery_mrr_max"
PAPER_TEST_LOTTERY_DRAWS = "paper_test_nan_lottery_draws"
PAPER_TEST_LOTTERY_METRICS = (PAPER_TEST_LOTTERY_MEAN,) \
    + tuple(lottery_quantile_metric(p) for p in PAPER_TEST_LOTTERY_QUANTILES) \
    + (PAPER_TEST_LOTTERY_MAX, PAPER_TEST_LOTTERY_DRAWS)

#: flat name → grouped copy, logged at the same steps (see the module docstring).
GROUPED_METRICS = {
    "loss": "train/loss",
    "valid_mrr": "valid/mrr",
    "test_mrr": "test/mrr",
    "paper_test_mrr": "test/paper_mrr",
}


def with_grouped(metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` plus the grouped copies of those of :data:`GROUPED_METRICS` it holds."""
    return {**metrics, **{GROUPED_METRICS[k]: v for k, v in metrics.items() if k in GROUPED_METRICS}}


def metric_key(split: str, metric: str) -> str:
    """MLflow metric name, e.g. ``metric_key("test", "hits@10") == "test_hits_10"``."""
    return f"{split}_{metric.replace('@', '_')}"


def flat_metrics(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{"test": {"mrr": .5, "hits@1": .4}}`` → ``{"test_mrr": .5, "test_hits_1": .4}``."""
    return {metric_key(split, name): value for split, values in metrics.items() for name, value in values.items()}
