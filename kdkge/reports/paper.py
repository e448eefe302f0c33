"""The paper's vocabulary, defined once: its datasets, models, calibrations, sizes, settings and tables.

Demir, Lienen & Ngonga Ngomo (2022), "Kronecker Decomposition for Knowledge Graph Embeddings".
Every report reads these names from here; the sweeps and the benchmarks may too (importing this
module is cheap: no pandas, no torch, nothing of :mod:`kdkge` but :mod:`kdkge.paths`).

* :data:`DATASETS`, :data:`MODELS` and their printed labels;
* :data:`CALIBRATIONS`: Table 3's five settings as ``(kind, α)`` pairs, and
  :data:`CALIBRATION_OPTIONS`, the same five as the option files of ``conf/calibration/``
  (``none``, ``ls_0.1``, …) that the sweeps use — :func:`calibration_option` maps one to the other;
* the settings of Sec. 5.1 (:data:`PAPER_SETTINGS`, :data:`PAPER_STRATEGY`), the sizes of
  Tables 2/3 (:data:`TABLE2_DIMS`, :data:`TABLE3_DIMS`) and of the size sweeps (:data:`TABLE_SIZES`,
  :data:`RANGE_SIZES`), the tables (:data:`TABLE_NUMBERS`, :data:`TITLES`, :data:`NOISE`);
* :data:`PROTOCOL_LOSS`: the loss each protocol trains with by default;
* the paper's printed numbers: :func:`load_paper_tables`, :func:`paper_dims`.
"""

from __future__ import annotations

from pathlib import Path

from ..paths import PAPER_CSV

DATASETS = ("umls", "kinship")
DATASET_LABELS = {"umls": "UMLS", "kinship": "KINSHIP"}
#: The paper's three models (registry names), in the order of its tables.
MODELS = ("distmult", "kd_rel_distmult", "kd_distmult")
MODEL_LABELS = {"distmult": "DistMult", "kd_rel_distmult": "KD-Rel-DistMult", "kd_distmult": "KD-DistMult"}
#: The Kronecker-decomposed models among :data:`MODELS`.
KD_MODELS = ("kd_rel_distmult", "kd_distmult")

#: Table 3's calibration settings as (kind, α): none, LS α=.1/.2, LR α=.1/.2.
CALIBRATIONS = (("none", None), ("ls", 0.1), ("ls", 0.2), ("lr", 0.1), ("lr", 0.2))


def calibration_option(kind: str, alpha: float | None = None) -> str:
    """The option file of ``conf/calibration/`` for a setting: ``("ls", 0.1)`` → ``"ls_0.1"``; ``"none"``."""
    return kind if alpha is None else f"{kind}_{alpha:g}"


#: The same five settings as option files (``calibration=none,ls_0.1,ls_0.2,lr_0.1,lr_0.2``).
CALIBRATION_OPTIONS = tuple(calibration_option(kind, alpha) for kind, alpha in CALIBRATIONS)

#: Sec. 5.1 of the paper; runs deviating from these are marked in every output.
PAPER_SETTINGS = {"epochs": 1000, "lr": 0.01, "batch_size": 1024, "seed": 1}
PAPER_STRATEGY = "1vsall"

#: The loss each protocol trains with by default (= :data:`kdkge.experiment.PROTOCOL_LOSS`; a test checks).
PROTOCOL_LOSS = {"paper_code": "softmax_ce", "paper_text": "bce"}
PROTOCOLS = tuple(PROTOCOL_LOSS)

#: Table 2's sizes (recovered from the paper's parameter counts, ``kdkge/paper/README.md``).
TABLE2_DIMS = {("umls", "distmult"): 289, ("umls", "kd_rel_distmult"): 289, ("umls", "kd_distmult"): 256,
               ("kinship", "distmult"): 289, ("kinship", "kd_rel_distmult"): 400, ("kinship", "kd_distmult"): 400}
#: Table 3's sizes: Table 2's, except KINSHIP KD-Rel-DistMult at 289.
TABLE3_DIMS = {**TABLE2_DIMS, ("kinship", "kd_rel_distmult"): 289}
#: The sizes behind Tables 4–6: 2², …, 20² (Table 6: 4 … 100; Table 5: 121 … 400; Table 4: 100 … 400).
TABLE_SIZES = tuple(k * k for k in range(2, 21))
#: The 100-size square grid of Sec. 5.1: 1², 2², …, 100² (``dim=range`` of a sweep).
RANGE_SIZES = tuple(k * k for k in range(1, 101))

TABLE_NUMBERS = (2, 3, 4, 5, 6)
NOISE = {2: 0.0, 3: 0.0, 4: 0.1, 5: 0.0, 6: 0.0}
TITLES = {
    2: "Link prediction results on UMLS and KINSHIP",
    3: "Link prediction results on UMLS and KINSHIP with model calibration",
    4: "Link prediction results on noisy UMLS and KINSHIP (10% noise)",
    5: "Link prediction results with the highest half of the parameter sweep",
    6: "Link prediction results with the lowest half of the parameter sweep",
}


def load_paper_tables(path: str | Path = PAPER_CSV):
    """The paper's Tables 2–6 (``kdkge/paper/paper_tables.csv``) as a DataFrame with the project's names.

    Columns: table, dataset (umls|kinship), model (registry names), calibration (none|ls|lr),
    alpha (float or NaN), split, noise, kind (run|avg), dim (Int64, NA on avg rows), params,
    mrr, hits_1, hits_3, hits_10.
    """
    import pandas as pd

    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    label_to_model = {v: k for k, v in MODEL_LABELS.items()}
    calibration = raw["calibration"].str.lower()
    num = lambda col: pd.to_numeric(raw[col], errors="coerce")  # noqa: E731
    return pd.DataFrame({
        "table": raw["table"].astype(int),
        "dataset": raw["dataset"].str.lower(),
        "model": raw["model"].map(label_to_model),
        "calibration": calibration.where(calibration != "avg", "none"),
        "alpha": num("alpha"),
        "split": raw["split"],
        "noise": num("noise").astype(float),
        "kind": calibration.map(lambda c: "avg" if c == "avg" else "run"),
        "dim": num("dim").astype("Int64"),
        "params": num("params"),
        "mrr": num("mrr"), "hits_1": num("hits1"), "hits_3": num("hits3"), "hits_10": num("hits10"),
    })


def paper_dims(paper, table: int, dataset: str, model: str) -> list[int]:
    """The embedding sizes of the paper's ``table`` rows for ``model`` on ``dataset``, ascending."""
    sel = paper[(paper.table == table) & (paper.dataset == dataset) & (paper.model == model)
                & (paper.kind == "run") & (paper.split == "test") & (paper.calibration == "none")]
    return sorted({int(d) for d in sel["dim"].dropna()})
