"""``results/equal_budget.{md,csv,tex}``: each KD model against the models of the same |Θ| (issue 18).

The paper compares KD-DistMult (d = 256, 3,728 parameters on UMLS) with a DistMult of 67,915. Here
every KD model and size of the equal-budget sweep (``sweeps/equal_budget.yaml``, planned by
:func:`kdkge.equal_budget.plan`) stands next to the DistMult and KD-Rel-DistMult (or KD-DistMult)
whose |Θ| is closest, and — for KD-DistMult — next to the three variants of ``scaled_distmult``
at its size (``dot`` = KD-DistMult exactly, ``abs`` without the sign, ``temperature`` a learned
scale per relation; :mod:`kdkge.models.scaled_distmult`).

Per protocol and test split (paper_code on the authors' 2022 split ``paper_test_*`` and on the
clean split ``test_*``; paper_text on the clean split), per member of a budget, over the seeds 1–5
of its runs at the paper's settings (1000 epochs, lr 0.01, batch 1024, 1vsAll, clean data, no
calibration; one run per seed, the newest): n/N seeds, mean ± sample std of MRR and Hits@1/3/10,
the 95 % Student-t interval of the mean MRR (:func:`kdkge.reports.stats.summary`), |Θ| (the logged
``num_parameters``), and a paired test against the budget's KD model over the seeds both have:
mean Δ MRR (KD − member), wins/losses, the paired t-test p (``scipy.stats.ttest_rel``), the exact
Wilcoxon signed-rank p and the exact sign-test p (both: no p below 2·0.5ⁿ, 0.0625 for 5 seeds).
Missing members and seeds render as — and n/N.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..schema import metric_key
from .common import (EM_DASH, METRICS, VALUE_HEADERS, Variant, fmt_metric, fmt_p, fmt_params, fmt_pm, fmt_signed)
from .paper import DATASET_LABELS, MODEL_LABELS
from .runs import RunPool, at_paper_settings, per_seed
from .stats import compare_paired, sign_test_floor, summary

STEM = "equal_budget"
#: the seeds of the equal-budget sweep (= :data:`kdkge.equal_budget.SEEDS`; a test checks)
SEEDS = (1, 2, 3, 4, 5)
#: scaled_distmult's variants (= :data:`kdkge.models.scaled_distmult.VARIANTS`; a test checks)
SCALED_VARIANTS = ("dot", "abs", "temperature")
#: the peers of a KD model in a budget, in the order of the sweep
PEERS = ("distmult", "kd_rel_distmult", "kd_distmult")


@dataclass(frozen=True)
class Member:
    """One configuration of a budget: a model at a width (and scaled_distmult's variant)."""

    model: str
    dim: int
    variant: str = ""
    planned_params: int | None = None  # |Θ| on the paper_code vocabulary (the plan's)

    @property
    def label(self) -> str:
        if self.model == "scaled_distmult":
            return f"Scaled DistMult ({self.variant})"
        return MODEL_LABELS.get(self.model, self.model)


@dataclass(frozen=True)
class Budget:
    """A KD model at one size and the members of its |Θ| (the KD model first)."""

    dataset: str
    model: str
    dim: int
    params: int
    members: tuple[Member, ...]

    @property
    def title(self) -> str:
        return (f"{DATASET_LABELS.get(self.dataset, self.dataset)}: {MODEL_LABELS[self.model]} d = {self.dim} "
                f"(|Θ| = {fmt_params(self.params)} on the paper_code vocabulary)")


def budgets_from_plan(rows: list[dict], count: Callable[..., int] | None = None) -> list[Budget]:
    """:func:`kdkge.equal_budget.plan`'s rows as budgets, with the members the sweep trains.

    ``count(model, dim, dataset, variant=...)``: the planned |Θ| of scaled_distmult (else none)."""
    out = []
    for row in rows:
        members = [Member(row["model"], row["dim"], planned_params=row["params"])]
        members += [Member(peer, row[peer][0], planned_params=row[peer][1]) for peer in PEERS if peer in row]
        if row["model"] == "kd_distmult":
            members += [Member("scaled_distmult", row["dim"], v, count and count("scaled_distmult", row["dim"],
                                                                                  row["dataset"], variant=v))
                        for v in SCALED_VARIANTS]
        out.append(Budget(row["dataset"], row["model"], row["dim"], row["params"], tuple(members)))
    return out


def planned_budgets() -> list[Budget]:
    """The budgets of ``sweeps/equal_budget.yaml`` (computed from the models: loads the datasets)."""
    from .. import equal_budget

    def count(model: str, dim: int, dataset: str, **options) -> int:
        return equal_budget.parameters(model, dim, dataset, "paper_code", **options)

    return budgets_from_plan(equal_budget.plan("paper_code"), count)


def member_runs(runs: pd.DataFrame, dataset: str, member: Member) -> pd.DataFrame:
    """One run per seed of :data:`SEEDS` (the newest) of a member at the paper's settings apart from the seed."""
    runs = at_paper_settings(runs)
    if runs.empty:
        return runs
    sel = runs[(runs.dataset == dataset) & (runs.model == member.model) & (runs.dim == member.dim)
               & runs.seed.isin(SEEDS)]
    if member.model == "scaled_distmult":
        sel = sel[sel["variant"].replace("", "dot") == member.variant]
    return per_seed(sel)


def _row(budget: Budget, member: Member, runs: pd.DataFrame, variant: Variant, kd: pd.Series) -> dict:
    split = variant.test_split
    row = {"protocol": variant.protocol, "split": split, "dataset": budget.dataset, "budget_model": budget.model,
           "budget_dim": budget.dim, "budget_params": budget.params, "model": member.model,
           "scaled_variant": member.variant, "dim": member.dim, "n": len(runs), "N": len(SEEDS),
           "seeds": ",".join(str(int(s)) for s in sorted(runs.seed))}
    params = runs["params"].dropna()
    row["params"] = float(params.mean()) if len(params) else (
        member.planned_params if variant.protocol == "paper_code" and member.planned_params else math.nan)
    row["params_logged"] = bool(len(params))
    for metric in METRICS:
        s = summary(runs[metric_key(split, metric)].tolist())
        row[f"{metric}_mean"], row[f"{metric}_std"] = s["mean"], s["std"]
        if metric == "mrr":
            row["mrr_ci_low"], row["mrr_ci_high"] = s["ci_low"], s["ci_high"]
    mrr = runs.set_index(runs.seed.astype(int))[metric_key(split, "mrr")].dropna()
    stats = None if member is budget.members[0] else compare_paired(kd, mrr, wilcoxon=True)
    for key in ("n", "mean_diff", "wins", "losses", "t_p", "wilcoxon_p", "sign_p"):
        row[f"pair_{key}"] = stats[key] if stats else (0 if key == "n" else math.nan)
    row["pair_floor"] = sign_test_floor(stats["n"]) if stats else math.nan
    return row


def build(pool: RunPool, budgets: list[Budget], variant: Variant) -> pd.DataFrame:
    """One row per (budget, member) from the runs of ``variant`` (``pool``: :meth:`RunPool.of`)."""
    rows = []
    split = variant.test_split
    for budget in budgets:
        kd_runs = member_runs(pool.runs, budget.dataset, budget.members[0])
        kd = kd_runs.set_index(kd_runs.seed.astype(int))[metric_key(split, "mrr")].dropna() if len(kd_runs) else \
            pd.Series(dtype=float)
        for member in budget.members:
            runs = kd_runs if member is budget.members[0] else member_runs(pool.runs, budget.dataset, member)
            rows.append(_row(budget, member, runs, variant, kd))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #

SMALL_N_NOTE = ("Paired tests over the seeds both have (n pairs), Δ = the budget's KD model − this model (positive: "
                "the KD model is better). Paired t: `scipy.stats.ttest_rel` (assumes normal differences; — when they "
                "do not vary). Wilcoxon: `scipy.stats.wilcoxon`, exact signed-rank test; sign: "
                "`scipy.stats.binomtest`, exact; both are distribution-free but cannot go below 2·0.5ⁿ (the floor "
                "in brackets; n = 5: 0.0625), so with 5 seeds or fewer only the t-test can reach 5 %. With n < 2 "
                "no test is possible (—).")


def _interval(row) -> str:
    if math.isnan(row["mrr_ci_low"]):
        return EM_DASH
    return f"[{fmt_metric(row['mrr_ci_low'])}, {fmt_metric(row['mrr_ci_high'])}]"


def _params(row) -> str:
    text = fmt_params(row["params"])
    return text if row["params_logged"] or text == EM_DASH else f"{text}*"


def _pair(row) -> list[str]:
    if not row["pair_n"]:
        return [EM_DASH] * 4
    return [f"{fmt_signed(row['pair_mean_diff'])} (n={int(row['pair_n'])})",
            f"{int(row['pair_wins'])}/{int(row['pair_losses'])}",
            fmt_p(row["pair_t_p"]), f"{fmt_p(row['pair_wilcoxon_p'])} ({fmt_p(row['pair_floor'])})"]


def _member_label(row) -> str:
    return Member(row["model"], int(row["dim"]), row["scaled_variant"]).label


HEAD = (["model", "d", "|Θ|", "seeds", "MRR", "95 % CI of MRR", *(VALUE_HEADERS[m] for m in METRICS[1:]),
         "Δ MRR (KD − this)", "wins/losses", "paired t p", "Wilcoxon p (floor)"])


def _section(df: pd.DataFrame, budgets: list[Budget]) -> list[str]:
    lines = []
    for budget in budgets:
        part = df[(df.dataset == budget.dataset) & (df.budget_model == budget.model) & (df.budget_dim == budget.dim)]
        lines += ["", f"### {budget.title}", "", "| " + " | ".join(h.replace("|", "\\|") for h in HEAD) + " |",
                  "|---|" + "---:|" * 3 + "---|" * 5 + "---:|" * 4]
        for _, r in part.iterrows():
            entries = [_member_label(r), str(int(r["dim"])), _params(r), f"{r['n']}/{r['N']}",
                       fmt_pm(r["mrr_mean"], r["mrr_std"]), _interval(r),
                       *(fmt_pm(r[f"{m}_mean"], r[f"{m}_std"]) for m in METRICS[1:]), *_pair(r)]
            lines.append("| " + " | ".join(entries) + " |")
    return lines


def render_markdown(frames: dict[Variant, pd.DataFrame], budgets: list[Budget]) -> str:
    lines = ["# Equal budget: the KD models against models of the same |Θ|", "",
             "Generated by `make tables` (`kdkge/reports/equal_budget.py`) from the recorded runs; do not edit by hand. "
             "For each KD model and size of the equal-budget sweep (`make sweep SWEEP=equal_budget`, planned by "
             "`python -m kdkge.equal_budget`): the DistMult and KD-Rel-DistMult (or KD-DistMult) whose |Θ| is closest, "
             "and for KD-DistMult the three variants of `scaled_distmult` at its size (dot = KD-DistMult's closed form, "
             "abs = without the sign of ⟨h̃, r̃⟩, temperature = a learned positive scale per relation).",
             "",
             f"Runs at the paper's settings apart from the seed (1000 epochs, lr 0.01, batch 1024, 1vsAll, clean data, "
             f"no calibration), seeds {', '.join(map(str, SEEDS))}, one run per seed (the newest). Mean ± sample "
             "standard deviation over the seeds (n/N: seeds present of those planned); 95 % CI: Student-t interval of "
             "the mean MRR (`scipy.stats.t`). |Θ|: the logged `num_parameters` (* planned, no run yet). — : no run.",
             "", SMALL_N_NOTE]
    for variant, df in frames.items():
        lines += ["", f"## {variant.label}: {variant.description}"]
        n_runs = int(df["n"].sum()) if len(df) else 0
        lines.append("")
        lines.append(f"{n_runs} of {len(df) * len(SEEDS)} planned (member, seed) runs present.")
        lines += _section(df, budgets)
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    return text.replace("_", r"\_").replace("±", r"$\pm$").replace("—", "---").replace("|Θ|", r"$|\Theta|$")


def render_latex(frames: dict[Variant, pd.DataFrame]) -> str:
    lines = ["% Generated by `make tables` (kdkge/reports/equal_budget.py); do not edit by hand. Needs booktabs.",
             r"\begin{table}[t]", r"\centering", r"\small",
             r"\caption{Equal parameter budgets: each KD model next to the models of the closest $|\Theta|$ "
             r"(test MRR, mean $\pm$ std over seeds; $\Delta$ = KD $-$ model, paired $t$-test $p$).}",
             r"\label{tab:kdkge-equal-budget}", r"\begin{tabular}{lllrrrlrr}", r"\toprule",
             r"Protocol & Dataset & Model & $d$ & $|\Theta|$ & $n$ & MRR & $\Delta$ & $p$ \\", r"\midrule"]
    for variant, df in frames.items():
        for _, r in df.iterrows():
            delta, p = (fmt_signed(r["pair_mean_diff"]), fmt_p(r["pair_t_p"])) if r["pair_n"] else ("", "")
            entries = [variant.label, DATASET_LABELS.get(r["dataset"], r["dataset"]), _member_label(r), str(int(r["dim"])),
                       _params(r).replace(",", "{,}"), f"{r['n']}/{r['N']}", fmt_pm(r["mrr_mean"], r["mrr_std"]), delta, p]
            lines.append(" & ".join(_tex(e) for e in entries) + r" \\")
        lines.append(r"\midrule")
    if lines[-1] == r"\midrule":
        lines.pop()
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def render(pools: dict[Variant, RunPool], budgets: list[Budget]) -> dict[str, bytes | None]:
    """File name → contents of ``equal_budget.{md,csv,tex}`` from the runs of each variant (``pools``:
    variant → :meth:`RunPool.of`); ``None`` for each (nothing to show) while no member has a run."""
    frames = {v: build(pool, budgets, v) for v, pool in pools.items()}
    names = [f"{STEM}.md", f"{STEM}.csv", f"{STEM}.tex"]
    if not any(len(df) and df["n"].sum() for df in frames.values()):
        return dict.fromkeys(names)
    csv = pd.concat(list(frames.values()), ignore_index=True).to_csv(index=False, float_format="%.6g")
    return dict(zip(names, (render_markdown(frames, budgets).encode("utf-8"), csv.encode("utf-8"),
                            render_latex(frames).encode("utf-8"))))
