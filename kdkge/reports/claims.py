"""The paper's claims (Sec. 1 and 6), evaluated on a table of cells — ours under any protocol, or
the paper's own numbers (:func:`kdkge.reports.common.load_paper_tables`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .tables import Table
from .common import VALUE_HEADERS, VALUES, fmt_delta, fmt_metric
from .paper import CALIBRATIONS, DATASET_LABELS, DATASETS, MODEL_LABELS, MODELS


def cells_frame(tables: dict[int, Table]) -> pd.DataFrame:
    """Our cells in the layout of :func:`load_paper_tables` (plus n_avg), for the claims."""
    records = []
    for t in tables.values():
        for row in t.rows:
            for ds, cell in row.cells.items():
                if not cell.has_data:
                    continue
                rec = {"table": t.number, "dataset": ds, "model": row.model, "calibration": row.calibration,
                       "alpha": float("nan") if row.alpha is None else row.alpha, "split": row.split,
                       "noise": t.noise, "kind": row.kind, "dim": cell.dim if row.kind == "run" else None,
                       "n_avg": cell.n_avg}
                rec.update({k: cell.values.get(k) for k in VALUES})
                records.append(rec)
    cols = ["table", "dataset", "model", "calibration", "alpha", "split", "noise", "kind", "dim", "n_avg", *VALUES]
    return pd.DataFrame.from_records(records, columns=cols)


def _get(f: pd.DataFrame, table: int, dataset: str, model: str, key: str = "mrr", split: str = "test",
         calibration: str = "none", alpha: float | None = None, kind: str = "run", dim: int | None = None):
    if f.empty:
        return None
    sel = f[(f.table == table) & (f.dataset == dataset) & (f.model == model) & (f.split == split)
            & (f.kind == kind) & (f.calibration == calibration)]
    sel = sel[sel["alpha"].isna()] if alpha is None else sel[(sel["alpha"] - alpha).abs() < 1e-9]
    if dim is not None:
        sel = sel[sel["dim"] == dim]
    if sel.empty or pd.isna(sel.iloc[0][key]):
        return None
    return float(sel.iloc[0][key])


def _r(v: float) -> float:
    return round(v, 3)


def _signed(v: float) -> str:
    return fmt_delta("mrr", v, 0.0)


Verdict = tuple[bool | None, str]  # (holds? None = cannot check, detail)


@dataclass
class Claim:
    table: int
    text: str  # the paper's claim
    evaluate: Callable[[pd.DataFrame], Verdict]


def _kd_best_columns(f: pd.DataFrame) -> Verdict:
    wins, n, lost = 0, 0, []
    for ds in DATASETS:
        for key in VALUES:
            vals = {m: _get(f, 2, ds, m, key) for m in MODELS}
            if any(v is None for v in vals.values()):
                continue
            n += 1
            pick = min if key == "params" else max
            best = pick(_r(v) for v in vals.values())
            if _r(vals["kd_distmult"]) == best:
                wins += 1
            else:
                lost.append(f"{DATASET_LABELS[ds]} {VALUE_HEADERS[key]}")
    detail = f"KD-DistMult best in {wins} of {n} columns" + (f" (not in {', '.join(lost)})" if lost else "")
    if n < 2 * len(VALUES):
        return None, detail + f"; only {n} of {2 * len(VALUES)} columns have all three models"
    return wins >= 9, detail


def _kd_beats(dataset: str, other: str, paper_ratio: float) -> Callable[[pd.DataFrame], Verdict]:
    def evaluate(f: pd.DataFrame) -> Verdict:
        kd, ot = _get(f, 2, dataset, "kd_distmult"), _get(f, 2, dataset, other)
        kp, op = _get(f, 2, dataset, "kd_distmult", "params"), _get(f, 2, dataset, other, "params")
        if None in (kd, ot, kp, op):
            return None, "missing runs"
        return _r(kd) > _r(ot), (f"test MRR {fmt_metric(kd)} vs {fmt_metric(ot)}; "
                                 f"{op / kp:.1f}× fewer parameters (paper: {paper_ratio}×)")
    return evaluate


def _mean_ratio(f: pd.DataFrame) -> Verdict:
    ratios = []
    for ds in DATASETS:
        kp, dp = _get(f, 2, ds, "kd_distmult", "params"), _get(f, 2, ds, "distmult", "params")
        if None in (kp, dp):
            return None, "missing runs"
        ratios.append(dp / kp)
    mean = sum(ratios) / len(ratios)
    return abs(mean - 16.4) <= 0.05 * 16.4, (f"{mean:.1f}× on average ({', '.join(f'{r:.1f}×' for r in ratios)}); "
                                             "holds if within 5% of 16.4×")


def _overfitting(f: pd.DataFrame) -> Verdict:
    gaps, missing = [], False
    for ds in DATASETS:
        for m in MODELS:
            tr, te = _get(f, 2, ds, m, split="train"), _get(f, 2, ds, m)
            if None in (tr, te):
                missing = True
                continue
            gaps.append((f"{MODEL_LABELS[m]} {DATASET_LABELS[ds]}", tr - te))
    if not gaps:
        return None, "missing runs"
    detail = ("train − test MRR: " + ", ".join(f"{n} {_signed(g)}" for n, g in gaps)
              + " (holds if every gap ≥ .100)")
    if missing:
        return None, detail + "; some runs missing"
    return all(g >= 0.1 for _, g in gaps), detail


def _extra_params_same_train(f: pd.DataFrame) -> Verdict:
    parts, ok = [], True
    for ds in DATASETS:
        dp, rp = _get(f, 2, ds, "distmult", "params"), _get(f, 2, ds, "kd_rel_distmult", "params")
        dt, rt = _get(f, 2, ds, "distmult", split="train"), _get(f, 2, ds, "kd_rel_distmult", split="train")
        if None in (dp, rp, dt, rt):
            return None, "missing runs"
        ok &= abs(_r(dt) - _r(rt)) <= 0.01
        parts.append(f"{DATASET_LABELS[ds]}: DistMult has {100 * (dp / rp - 1):.0f}% more parameters, "
                     f"train MRR {fmt_metric(dt)} vs {fmt_metric(rt)}")
    return ok, "; ".join(parts) + " (holds if train MRRs differ by ≤ .010)"


def _calibration_gains(f: pd.DataFrame, dataset: str, model: str) -> tuple[float | None, float | None, list]:
    none = _get(f, 3, dataset, model)
    cal = [(c, a, _get(f, 3, dataset, model, calibration=c, alpha=a)) for c, a in CALIBRATIONS[1:]]
    cal = [(c, a, v) for c, a, v in cal if v is not None]
    best = max(cal, key=lambda x: x[2]) if cal else None
    return none, (best[2] if best else None), cal


def _calibration_helps(dataset: str, helps: bool) -> Callable[[pd.DataFrame], Verdict]:
    def evaluate(f: pd.DataFrame) -> Verdict:
        parts, verdicts = [], []
        for m in MODELS:
            none, best, cal = _calibration_gains(f, dataset, m)
            if none is None or best is None:
                continue
            verdicts.append(_r(best) > _r(none))
            parts.append(f"{MODEL_LABELS[m]} {fmt_metric(none)} → best calibrated {fmt_metric(best)}")
        if not verdicts:
            return None, "missing runs"
        detail = "; ".join(parts)
        if len(verdicts) < len(MODELS):
            detail += f" (only {len(verdicts)} of {len(MODELS)} models have runs)"
        return (all(verdicts) if helps else not any(verdicts)), detail
    return evaluate


def _calibration_tracks_overfitting(f: pd.DataFrame) -> Verdict:
    parts, verdicts = [], []
    for m in MODELS:
        gap, gain = {}, {}
        for ds in DATASETS:
            none, best, _ = _calibration_gains(f, ds, m)
            train = _get(f, 3, ds, m, split="train")
            if None in (none, best, train):
                break
            gap[ds], gain[ds] = train - none, best - none
        else:
            more_gap, more_gain = max(gap, key=gap.get), max(gain, key=gain.get)
            verdicts.append(more_gap == more_gain)
            parts.append(f"{MODEL_LABELS[m]}: larger gap on {DATASET_LABELS[more_gap]}, "
                         f"larger gain on {DATASET_LABELS[more_gain]}")
    if not verdicts:
        return None, "missing runs"
    return all(verdicts), "; ".join(parts)


def _noise_drops(f: pd.DataFrame, dataset: str, model: str) -> list[float]:
    """Clean − noisy test MRR at each size of Table 4 that has both (clean from Tables 5/6)."""
    if f.empty:
        return []
    noisy = f[(f.table == 4) & (f.dataset == dataset) & (f.model == model) & (f.kind == "run")]
    drops = []
    for _, r in noisy.iterrows():
        if pd.isna(r["mrr"]) or pd.isna(r["dim"]):
            continue
        clean = [_get(f, t, dataset, model, dim=int(r["dim"])) for t in (5, 6)]
        clean = [c for c in clean if c is not None]
        if clean:
            drops.append(clean[0] - float(r["mrr"]))
    return drops


def _distmult_noise_drop(f: pd.DataFrame) -> Verdict:
    drops = _noise_drops(f, "kinship", "distmult")
    if not drops:
        return None, "missing runs (needs noisy and clean DistMult runs on KINSHIP at the same sizes)"
    mean = sum(drops) / len(drops)
    return mean >= 0.035, (f"mean clean − noisy test MRR {_signed(mean)} over {len(drops)} size(s), "
                           f"largest {_signed(max(drops))} (holds if the mean drop ≥ .035, half the claimed .07)")


def _kd_robust(dataset: str) -> Callable[[pd.DataFrame], Verdict]:
    def evaluate(f: pd.DataFrame) -> Verdict:
        means = {}
        for m in MODELS:
            d = _noise_drops(f, dataset, m)
            if d:
                means[m] = (sum(d) / len(d), len(d))
        detail = ", ".join(f"{MODEL_LABELS[m]} {_signed(v)} ({n} sizes)" for m, (v, n) in means.items())
        if len(means) < len(MODELS):
            return None, ("mean MRR drop from noise: " + detail + "; " if detail else "") + "missing runs"
        dm = means["distmult"][0]
        return all(means[m][0] < dm for m in MODELS[1:]), "mean MRR drop from noise: " + detail
    return evaluate


def _kd_rel_highest_noisy(dataset: str) -> Callable[[pd.DataFrame], Verdict]:
    def evaluate(f: pd.DataFrame) -> Verdict:
        sel = f[(f.table == 4) & (f.dataset == dataset) & (f.kind == "run")] if not f.empty else f
        if sel.empty or set(sel["model"]) != set(MODELS):
            return None, "missing runs"
        parts, ok = [], True
        for key in ("mrr", "hits_1", "hits_3"):
            top = sel.loc[sel[key].astype(float).idxmax()]
            ok &= _r(float(top[key])) == _r(float(sel[sel.model == "kd_rel_distmult"][key].max()))
            parts.append(f"{VALUE_HEADERS[key]} {fmt_metric(float(top[key]))} by {MODEL_LABELS[top['model']]}")
        return ok, "highest " + ", ".join(parts)
    return evaluate


def _avg(f: pd.DataFrame, table: int, dataset: str, model: str) -> tuple[float | None, bool]:
    v = _get(f, table, dataset, model, kind="avg")
    if v is None:
        return None, False
    sel = f[(f.table == table) & (f.dataset == dataset) & (f.model == model) & (f.kind == "avg")]
    n_avg = sel.iloc[0]["n_avg"] if "n_avg" in sel.columns else None
    partial = isinstance(n_avg, tuple) and n_avg[0] < n_avg[1]
    return v, partial


def _kd_good_at_large_sizes(dataset: str) -> Callable[[pd.DataFrame], Verdict]:
    def evaluate(f: pd.DataFrame) -> Verdict:
        vals = {m: _avg(f, 5, dataset, m) for m in MODELS}
        if any(v is None for v, _ in vals.values()):
            return None, "missing runs"
        dm = vals["distmult"][0]
        better = [m for m in MODELS[1:] if _r(vals[m][0]) >= _r(dm)]
        detail = "avg. test MRR " + ", ".join(f"{MODEL_LABELS[m]} {fmt_metric(v)}" for m, (v, _) in vals.items())
        if any(p for _, p in vals.values()):
            detail += " (partial sweeps)"
        return bool(better), detail + " (holds if a KD model's avg. MRR ≥ DistMult's)"
    return evaluate


def _kd_benefit_shrinks(dataset: str) -> Callable[[pd.DataFrame], Verdict]:
    def evaluate(f: pd.DataFrame) -> Verdict:
        adv, partial = {}, False
        for t in (5, 6):
            vals = {m: _avg(f, t, dataset, m) for m in MODELS}
            if any(v is None for v, _ in vals.values()):
                return None, "missing runs"
            partial |= any(p for _, p in vals.values())
            adv[t] = max(vals[m][0] for m in MODELS[1:]) - vals["distmult"][0]
        detail = (f"best KD model's avg. MRR − DistMult's: {_signed(adv[5])} (Table 5, large d) vs "
                  f"{_signed(adv[6])} (Table 6, small d)" + (" (partial sweeps)" if partial else ""))
        return adv[6] < adv[5], detail
    return evaluate


CLAIMS: list[Claim] = [
    Claim(2, "KD-DistMult outperforms DistMult and KD-Rel-DistMult in 9 out of 10 metrics (|Θ|, MRR, "
             "H@1/3/10 on both datasets)", _kd_best_columns),
    Claim(2, "KD-DistMult outperforms DistMult on UMLS with 18.2× fewer parameters",
          _kd_beats("umls", "distmult", 18.2)),
    Claim(2, "KD-DistMult outperforms KD-Rel-DistMult on UMLS with 11.4× fewer parameters",
          _kd_beats("umls", "kd_rel_distmult", 11.4)),
    Claim(2, "KD-DistMult beats DistMult on KINSHIP with 14.6× fewer parameters",
          _kd_beats("kinship", "distmult", 14.6)),
    Claim(2, "KD-DistMult beats KD-Rel-DistMult on KINSHIP with 14.2× fewer parameters",
          _kd_beats("kinship", "kd_rel_distmult", 14.2)),
    Claim(2, "KD on entity and relation embeddings needs on average 16.4× fewer parameters (Sec. 1)",
          _mean_ratio),
    Claim(2, "All models suffer from overfitting (train MRR far above test MRR)", _overfitting),
    Claim(2, "DistMult's 59% more parameters than KD-Rel-DistMult do not change its training-set MRR",
          _extra_params_same_train),
    Claim(3, "Model calibration (LS/LR) improves test MRR on UMLS", _calibration_helps("umls", True)),
    Claim(3, "Model calibration does not improve test MRR on KINSHIP", _calibration_helps("kinship", False)),
    Claim(3, "Calibration helps more where overfitting (train − test MRR) is larger",
          _calibration_tracks_overfitting),
    Claim(4, "10% noise decreases DistMult's MRR on KINSHIP by about 7 points", _distmult_noise_drop),
    Claim(4, "KD-Rel-DistMult and KD-DistMult are more robust to noise than DistMult (UMLS)", _kd_robust("umls")),
    Claim(4, "KD-Rel-DistMult and KD-DistMult are more robust to noise than DistMult (KINSHIP)",
          _kd_robust("kinship")),
    Claim(4, "KD-Rel-DistMult reaches the highest MRR, H@1 and H@3 with noisy data (UMLS)",
          _kd_rel_highest_noisy("umls")),
    Claim(4, "KD-Rel-DistMult reaches the highest MRR, H@1 and H@3 with noisy data (KINSHIP)",
          _kd_rel_highest_noisy("kinship")),
    Claim(5, "At large sizes KD-Rel-DistMult and KD-DistMult perform well compared to DistMult (UMLS)",
          _kd_good_at_large_sizes("umls")),
    Claim(5, "At large sizes KD-Rel-DistMult and KD-DistMult perform well compared to DistMult (KINSHIP)",
          _kd_good_at_large_sizes("kinship")),
    Claim(6, "As the embedding size decreases, the benefit of KD becomes less tangible (UMLS)",
          _kd_benefit_shrinks("umls")),
    Claim(6, "As the embedding size decreases, the benefit of KD becomes less tangible (KINSHIP)",
          _kd_benefit_shrinks("kinship")),
]


def _verdict_text(v: bool | None) -> str:
    return {True: "**holds**", False: "**does not hold**", None: "cannot check"}[v]
