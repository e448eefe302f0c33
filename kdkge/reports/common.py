"""Names shared by every report: the values of a cell, the protocol variants, the selection rules, and
the one number format of the results files (the paper's vocabulary is :mod:`.paper`).

Number format (every file under ``results/`` written by ``make tables``, ``make seeds`` and
``make calibration``): metrics with three decimals and no leading zero, as the paper prints them
(``.517``, ``1.000``); differences signed (``+.038``, ``-.041``, ``±.000``); |Θ| with thousands
separators (``67,337``); p-values with four decimals (``0.0625``); a missing value is an em dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..paths import experiment_name
from ..schema import RANK_METRICS
from .paper import DATASETS, PROTOCOL_LOSS


METRICS = tuple(RANK_METRICS)  # mrr, hits_1, hits_3, hits_10
VALUES = ("params",) + METRICS  # the five numbers of a cell
VALUE_HEADERS = {"params": "|Θ|", "mrr": "MRR", "hits_1": "@1", "hits_3": "@3", "hits_10": "@10"}
DEFAULT_EXPERIMENTS = tuple(experiment_name(d) for d in DATASETS)
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

#: The loss each protocol trains with by default (:data:`kdkge.reports.paper.PROTOCOL_LOSS`).
#: Runs without ``protocol``/``loss`` tags were recorded before protocols existed: paper_text, bce.
DEFAULT_LOSS = PROTOCOL_LOSS
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
