"""Names shared by every report: datasets, models, tables, protocol variants, the paper's numbers,
and the one number format of the results files.

Number format (every file under ``results/`` written by ``make tables``, ``make seeds`` and
``make calibration``): metrics with three decimals and no leading zero, as the paper prints them
(``.517``, ``1.000``); differences signed (``+.038``, ``-.041``, ``±.000``); |Θ| with thousands
separators (``67,337``); p-values with four decimals (``0.0625``); a missing value is an em dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..paths import PAPER_CSV
from ..schema import RANK_METRICS


DATASETS = ("umls", "kinship")
DATASET_LABELS = {"umls": "UMLS", "kinship": "KINSHIP"}
MODELS = ("distmult", "kd_rel_distmult", "kd_distmult")
MODEL_LABELS = {"distmult": "DistMult", "kd_rel_distmult": "KD-Rel-DistMult", "kd_distmult": "KD-DistMult"}
METRICS = tuple(RANK_METRICS)  # mrr, hits_1, hits_3, hits_10
VALUES = ("params",) + METRICS  # the five numbers of a cell
VALUE_HEADERS = {"params": "|Θ|", "mrr": "MRR", "hits_1": "@1", "hits_3": "@3", "hits_10": "@10"}
CALIBRATIONS = (("none", None), ("ls", 0.1), ("ls", 0.2), ("lr", 0.1), ("lr", 0.2))
#: Sec. 5.1 of the paper; runs deviating from these are marked in every output.
PAPER_SETTINGS = {"epochs": 1000, "lr": 0.01, "batch_size": 1024, "seed": 1}
PAPER_STRATEGY = "1vsall"
TABLE_NUMBERS = (2, 3, 4, 5, 6)
NOISE = {2: 0.0, 3: 0.0, 4: 0.1, 5: 0.0, 6: 0.0}
TITLES = {
    2: "Link prediction results on UMLS and KINSHIP",
    3: "Link prediction results on UMLS and KINSHIP with model calibration",
    4: "Link prediction results on noisy UMLS and KINSHIP (10% noise)",
    5: "Link prediction results with the highest half of the parameter sweep",
    6: "Link prediction results with the lowest half of the parameter sweep",
}
DEFAULT_EXPERIMENTS = tuple(f"kdkge-{d}" for d in DATASETS)
LOG_EXPERIMENT = "kdkge-tables"
EM_DASH = "—"
SELECTION_RULES = {
    "paper": "the paper's embedding size for each model and dataset (Table 2: UMLS d = 289/289/256, "
    "KINSHIP d = 289/400/400 for DistMult/KD-Rel-DistMult/KD-DistMult; Table 3: the same except "
    "KINSHIP KD-Rel-DistMult d = 289), no calibration, clean data",
    "best-valid": "for each model and dataset, the run (no calibration, clean data) with the best "
    "validation MRR over all logged sizes (runs at the paper's settings first); Table 3 uses that "
    "size for all calibration rows. Test MRR is never used to select",
}

# --------------------------------------------------------------------------- #
# Protocols
# --------------------------------------------------------------------------- #

#: The loss each protocol trains with by default (= kdkge.experiment.PROTOCOL_LOSS; a test checks).
#: Runs without ``protocol``/``loss`` tags were recorded before protocols existed: paper_text, bce.
DEFAULT_LOSS = {"paper_code": "softmax_ce", "paper_text": "bce"}
UNTAGGED_PROTOCOL, UNTAGGED_LOSS = "paper_text", "bce"


@dataclass(frozen=True)
class Variant:
    """The runs of one protocol with its default loss, and the test split its tables show."""

    protocol: str
    loss: str
    test_split: str  # the split of the test rows: "test" (clean) or "paper_test" (the authors' 2022 split)
    suffix: str  # file names: table2{suffix}.md
    label: str  # short, for headers

    @property
    def description(self) -> str:
        split = ("the authors' 2022 test split ranked as their code did (`paper_test_*`)"
                 if self.test_split == "paper_test" else "the clean test split (`test_*`), realistic filtered ranks")
        return f"protocol `{self.protocol}` with its loss `{self.loss}`; test rows on {split}"


#: The paper's text (every run before protocols existed): today's results/table{2..6}.* files.
PAPER_TEXT = Variant("paper_text", "bce", "test", "", "paper_text")
#: What the authors' code ran, on their 2022 test split: results/table{2..6}_paper_code.*.
PAPER_CODE = Variant("paper_code", "softmax_ce", "paper_test", "_paper_code", "paper_code, 2022 split")
#: The same runs on the clean test split (REPRODUCTION.md only).
PAPER_CODE_CLEAN = Variant("paper_code", "softmax_ce", "test", "_paper_code_clean", "paper_code, clean split")
#: The variants written as table files, in order.
FILE_VARIANTS = (PAPER_TEXT, PAPER_CODE)


# --------------------------------------------------------------------------- #
# Number format
# --------------------------------------------------------------------------- #


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_metric(v: float | None) -> str:
    """Like the paper: three decimals, no leading zero (``.517``)."""
    if missing(v):
        return EM_DASH
    s = f"{v:.3f}"
    return s[1:] if s.startswith("0.") else ("-" + s[2:] if s.startswith("-0.") else s)


def fmt_params(v: float | None) -> str:
    return EM_DASH if missing(v) else f"{round(v):,}"


def fmt_value(key: str, v: float | None) -> str:
    return fmt_params(v) if key == "params" else fmt_metric(v)


def fmt_signed(d: float | None) -> str:
    """A difference of metrics: ``+.038``, ``-.041``, ``±.000``; em dash when missing."""
    if missing(d):
        return EM_DASH
    s = f"{d:+.3f}".replace("+0.", "+.").replace("-0.", "-.")
    return "±.000" if s in ("+.000", "-.000") else s


def fmt_delta(key: str, ours: float | None, paper: float | None) -> str:
    if missing(ours) or missing(paper):
        return ""
    if key == "params":
        return f"{round(ours - paper):+,}"
    return fmt_signed(ours - paper)


def fmt_pm(mean: float | None, std: float | None) -> str:
    """``.500 ± .016``; the mean alone without a std."""
    return fmt_metric(mean) if missing(std) else f"{fmt_metric(mean)} ± {fmt_metric(std)}"


def fmt_p(p: float | None) -> str:
    """A p-value: four decimals (``0.0625``)."""
    return EM_DASH if missing(p) else f"{p:.4f}"


def alpha_label(alpha: float) -> str:
    return f"{alpha:.1f}".lstrip("0")


# --------------------------------------------------------------------------- #
# The paper's numbers
# --------------------------------------------------------------------------- #


def load_paper_tables(path: str | Path = PAPER_CSV) -> pd.DataFrame:
    """The paper's Tables 2–6 (``kdkge/paper/paper_tables.csv``) with the project's names.

    Columns: table, dataset (umls|kinship), model (registry names), calibration (none|ls|lr),
    alpha (float or NaN), split, noise, kind (run|avg), dim (Int64, NA on avg rows), params,
    mrr, hits_1, hits_3, hits_10.
    """
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


def paper_dims(paper: pd.DataFrame, table: int, dataset: str, model: str) -> list[int]:
    """The embedding sizes of the paper's ``table`` rows for ``model`` on ``dataset``, ascending."""
    sel = paper[(paper.table == table) & (paper.dataset == dataset) & (paper.model == model)
                & (paper.kind == "run") & (paper.split == "test") & (paper.calibration == "none")]
    return sorted({int(d) for d in sel["dim"].dropna()})
