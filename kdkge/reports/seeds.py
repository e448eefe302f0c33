"""Several seeds per cell: mean ± std, a bootstrap 95 % interval, and paired model comparisons.

The paper reports one seed per cell (and its Tables 4–6 swing by ±0.1 MRR between neighbouring
sizes).  Train a cell with several seeds — ``make sweep SWEEP=table2_seeds`` (seeds 1–5; on clean
data the five seeds of one configuration are stacked into one job) or ``python train.py -m
seed=1,2,3,4,5 ...`` — then ``python -m kdkge.seeds`` (``make seeds``) writes
``results/seeds.md`` for every cell with several seeds, and ``make tables`` writes Table 2's cells
in the paper's layout as ``results/table2_seeds{,_paper_code}.*`` (:func:`table2_seeds`, one set of
files per protocol):

* per (protocol, loss, dataset, model, d, calibration, noise): n seeds, mean ± sample std of test
  MRR and Hits@1/3/10, and a percentile-bootstrap 95 % interval of the mean MRR;
* paired comparisons per protocol, loss, dataset and size: KD-DistMult − DistMult and
  KD-Rel-DistMult − DistMult test MRR over the seeds both have (mean difference, bootstrap 95 %
  interval, the number of seeds where the KD model wins, the two-sided exact sign-test p-value,
  and the paired t-test p-value).

The statistics (:mod:`.stats`) are scipy's: ``scipy.stats.bootstrap`` (percentile method, 10,000 resamples, fixed
seed), ``scipy.stats.binomtest`` (the sign test: wins among non-tied pairs ~ Binomial(n, ½)) and
``scipy.stats.ttest_rel``.  With n pairs the two-sided sign test can never go below 2·0.5ⁿ
(0.0625 for 5 seeds): five wins out of five is "p = 0.0625", not significance at 5 %.

Only FINISHED runs count; of several runs of one configuration and seed, the newest is used.
Numbers in the format of :mod:`kdkge.reports.common` (metrics ``.500``, p-values ``0.0625``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..paths import RECORD_DIR
from ..schema import metric_key
from .common import PAPER_TEXT, Variant, fmt_metric, fmt_p, fmt_pm, fmt_signed
from .guard import apply
from .paper import DATASET_LABELS, DATASETS, MODEL_LABELS, MODELS, paper_dims
from .runs import RunPool, at_paper_settings, load_runs, model_names, per_seed
from .stats import SIGN_FLOOR_NOTE, bootstrap_ci, compare_paired

CELL = ["protocol", "loss", "dataset", "model", "dim", "calibration", "alpha", "noise_ratio", "epochs", "strategy"]
METRICS = ["test_mrr", "test_hits_1", "test_hits_3", "test_hits_10"]
#: the paired comparisons: each KD model − DistMult
PAIRS = (("kd_distmult", "distmult"), ("kd_rel_distmult", "distmult"))


def runs_frame(tracking_uri: str | None, experiments: Sequence[str], record: str | Path | None = None) -> pd.DataFrame:
    """One row per FINISHED (configuration, seed), the newest; columns CELL + seed + METRICS.

    Built on :func:`kdkge.reports.runs.load_runs` (the one loader of FINISHED runs, newest per
    config hash; from the store, or from the run record in the folder ``record``).
    """
    runs = load_runs(tracking_uri, experiments, record).runs
    if runs.empty:
        return pd.DataFrame(columns=CELL + ["seed"] + METRICS)
    runs = runs[runs["seed"].notna()]
    out = pd.DataFrame({
        "protocol": runs["protocol"], "loss": runs["loss"],
        "dataset": runs["dataset"], "model": model_names(runs), "dim": runs["dim"].astype(int),
        "calibration": runs["calibration"],
        "alpha": runs["alpha"].map(lambda a: "" if a != a else f"{a:g}"),
        "noise_ratio": runs["noise"].map(lambda v: f"{v:g}" if v else "0.0"),
        "epochs": runs["epochs"].map(lambda v: "" if v != v else f"{v:g}"),
        "strategy": runs["strategy"].fillna(""),
        "seed": runs["seed"].astype(int),
    })
    for metric in METRICS:
        out[metric] = runs[metric].astype(float)
    return out.drop_duplicates(CELL + ["seed"], keep="first").reset_index(drop=True)  # runs: newest first


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and bootstrap interval per cell."""
    rows = []
    for cell, group in df.groupby(CELL, sort=True):
        row = dict(zip(CELL, cell), n=len(group), seeds=",".join(map(str, sorted(group["seed"]))))
        for metric in METRICS:
            row[f"{metric}_mean"] = group[metric].mean()
            row[f"{metric}_std"] = group[metric].std(ddof=1) if len(group) > 1 else float("nan")
        row["test_mrr_ci_low"], row["test_mrr_ci_high"] = bootstrap_ci(group["test_mrr"])
        rows.append(row)
    return pd.DataFrame(rows)


def paired(df: pd.DataFrame) -> pd.DataFrame:
    """KD model − DistMult test MRR per dataset and size, over the seeds both have."""
    rows = []
    keys = ["protocol", "loss", "dataset", "dim", "calibration", "alpha", "noise_ratio", "epochs", "strategy"]
    for cell, group in df.groupby(keys, sort=True):
        for kd, base in PAIRS:
            a = group[group["model"] == kd].set_index("seed")["test_mrr"]
            b = group[group["model"] == base].set_index("seed")["test_mrr"]
            stats = compare_paired(a, b)
            if stats is not None:
                rows.append(dict(zip(keys, cell), comparison=f"{kd} − {base}", **stats))
    return pd.DataFrame(rows)


def fmt3(x: float | None) -> str:
    """A metric with 3 decimals in the results files' one format (``.500``); "—" when missing."""
    return fmt_metric(x)


def markdown(summary: pd.DataFrame, pairs: pd.DataFrame) -> str:
    lines = ["# Several seeds per cell", "",
             "Generated by `python -m kdkge.seeds` from MLflow (FINISHED runs, newest per configuration and seed).",
             "Mean ± sample standard deviation over seeds; 95 % interval: percentile bootstrap of the mean "
             "(`scipy.stats.bootstrap`, 10,000 resamples).", ""]
    if summary.empty:
        return "\n".join(lines + ["No runs found.", ""])
    lines += ["| protocol | loss | dataset | model | d | calibration | noise | n | test MRR | 95 % CI | H@1 | H@3 | H@10 |",
              "|---|---|---|---|---:|---|---|---:|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        cal = r.calibration + (f" α={r.alpha}" if r.alpha else "")
        cells = [fmt_pm(getattr(r, f"{m}_mean"), getattr(r, f"{m}_std")) for m in METRICS]
        lines.append(f"| {r.protocol} | {r.loss} | {r.dataset} | {r.model} | {r.dim} | {cal} | {r.noise_ratio} | {r.n} | "
                     f"{cells[0]} | [{fmt3(r.test_mrr_ci_low)}, {fmt3(r.test_mrr_ci_high)}] | {cells[1]} | {cells[2]} | {cells[3]} |")
    lines += ["", "## Paired comparisons (same seeds)", ""]
    if pairs.empty:
        lines.append("No configuration has both models on common seeds.")
    else:
        lines += [SIGN_FLOOR_NOTE, "",
                  "| protocol | loss | dataset | d | calibration | noise | comparison | n | mean Δ test MRR | 95 % CI | "
                  "wins/losses | sign test p (floor) | paired t p |",
                  "|---|---|---|---:|---|---|---|---:|---:|---|---|---:|---:|"]
        for r in pairs.itertuples(index=False):
            lines.append(f"| {r.protocol} | {r.loss} | {r.dataset} | {r.dim} | {r.calibration} | {r.noise_ratio} | "
                         f"{r.comparison} | {r.n} | {fmt_signed(r.mean_diff)} | [{fmt3(r.ci_low)}, {fmt3(r.ci_high)}] | "
                         f"{r.wins}/{r.losses} | {fmt_p(r.sign_p)} ({fmt_p(r.sign_floor)}) | {fmt_p(r.t_p)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- #
# Table 2 over seeds, in the paper's layout (``make tables``: results/table2_seeds*.*)
# --------------------------------------------------------------------------- #

#: the four metrics of a Table 2 cell over seeds
CELL_METRICS = ("mrr", "hits_1", "hits_3", "hits_10")
STEM = "table2_seeds"


def seed_runs(runs: pd.DataFrame, dataset: str, model: str, dim: int) -> pd.DataFrame:
    """One run per seed (the newest) of a Table 2 cell at the paper's settings except the seed."""
    runs = at_paper_settings(runs)
    if runs.empty:
        return runs
    return per_seed(runs[(runs.dataset == dataset) & (runs.model == model) & (runs.dim == dim)])


def table2_seeds(pool: RunPool, paper: pd.DataFrame, variant: Variant = PAPER_TEXT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(cells, pairs)``: one row per (dataset, model, split), one per (dataset, comparison).

    ``pool``: the runs of ``variant`` (:meth:`RunPool.of`); its test split is ``variant.test_split``."""
    test = variant.test_split
    cells, by_seed = [], {}
    for dataset in DATASETS:
        for model in MODELS:
            dims = paper_dims(paper, 2, dataset, model)
            if not dims:
                continue
            runs = seed_runs(pool.runs, dataset, model, dims[0])
            by_seed[dataset, model] = runs.set_index(runs.seed.astype(int))[metric_key(test, "mrr")].dropna()
            for split in ("test", "train"):
                col = test if split == "test" else split
                row = {"dataset": dataset, "model": model, "split": split, "dim": dims[0], "n": len(runs),
                       "seeds": ",".join(str(int(s)) for s in sorted(runs.seed))}
                for metric in CELL_METRICS:
                    values = runs[metric_key(col, metric)].dropna()
                    row[f"{metric}_mean"] = values.mean() if len(values) else math.nan
                    row[f"{metric}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
                row["mrr_ci_low"], row["mrr_ci_high"] = bootstrap_ci(runs[metric_key(col, "mrr")].dropna())
                cells.append(row)
    pairs = []
    for dataset in DATASETS:
        for kd, base in PAIRS:
            a, b = by_seed.get((dataset, kd)), by_seed.get((dataset, base))
            stats = None if a is None or b is None else compare_paired(a, b)
            if stats is not None and stats["n"] >= 2:
                pairs.append({"dataset": dataset, "comparison": f"{MODEL_LABELS[kd]} − {MODEL_LABELS[base]}", **stats})
    return pd.DataFrame(cells), pd.DataFrame(pairs)


def _pm(row, metric: str) -> str:
    return fmt_pm(row[f"{metric}_mean"], row[f"{metric}_std"])


def table2_markdown(cells: pd.DataFrame, pairs: pd.DataFrame, variant: Variant = PAPER_TEXT) -> str:
    title = "# Table 2 over several seeds" + ("" if variant == PAPER_TEXT else f" ({variant.label})")
    lines = [title, "",
             "Generated by `make tables` (`kdkge/reports/seeds.py`) from the recorded runs: FINISHED runs at the paper's "
             "settings (1000 epochs, lr 0.01, batch 1024, 1vsAll, no calibration, clean data) at Table 2's sizes, any "
             f"seed; one run per seed (the newest); {variant.description}. Mean ± sample standard deviation over the "
             "seeds; 95 % CI: percentile bootstrap of the mean (`scipy.stats.bootstrap`, 10,000 resamples). The seeds "
             "come from `make sweep SWEEP=table2_seeds`.", ""]
    for dataset in DATASETS:
        part = cells[cells.dataset == dataset]
        if part.empty:
            continue
        lines += [f"## {DATASET_LABELS[dataset]}", "",
                  "| model | split | d | seeds | MRR | 95 % CI of MRR | H@1 | H@3 | H@10 |",
                  "| --- | --- | ---: | --- | --- | --- | --- | --- | --- |"]
        for _, r in part.iterrows():
            label = MODEL_LABELS[r.model] if r.split == "test" else "on training set"
            lines.append(f"| {label} | {r.split} | {r.dim} | {r.n} ({r.seeds or 'none'}) | {_pm(r, 'mrr')} | "
                         f"[{fmt3(r.mrr_ci_low)}, {fmt3(r.mrr_ci_high)}] | {_pm(r, 'hits_1')} | {_pm(r, 'hits_3')} | {_pm(r, 'hits_10')} |")
        lines.append("")
    lines += ["## Paired comparisons (test MRR, same seeds)", ""]
    if pairs.empty:
        lines.append("No dataset has two models on two or more common seeds.")
    else:
        lines += [SIGN_FLOOR_NOTE, "",
                  "| dataset | comparison | seeds | mean Δ MRR | 95 % CI | wins/losses | sign test p (floor) | paired t p |",
                  "| --- | --- | ---: | ---: | --- | --- | ---: | ---: |"]
        for _, r in pairs.iterrows():
            lines.append(f"| {DATASET_LABELS[r.dataset]} | {r.comparison} | {r.n} | {fmt_signed(r.mean_diff)} | "
                         f"[{fmt3(r.ci_low)}, {fmt3(r.ci_high)}] | {r.wins}/{r.losses} | {fmt_p(r.sign_p)} "
                         f"({fmt_p(r.sign_floor)}) | {fmt_p(r.t_p)} |")
    return "\n".join(lines) + "\n"


def table2_latex(cells: pd.DataFrame, variant: Variant = PAPER_TEXT) -> str:
    which = "" if variant == PAPER_TEXT else ", " + variant.label.replace("_", r"\_")
    lines = [r"\begin{table}[t]", r"\centering",
             rf"\caption{{Link prediction results on UMLS and KINSHIP over several seeds (mean $\pm$ std{which}).}}",
             r"\begin{tabular}{llrrllll}", r"\toprule",
             r"Dataset & Model & $d$ & $n$ & MRR & H@1 & H@3 & H@10 \\", r"\midrule"]
    for _, r in cells.iterrows():
        label = MODEL_LABELS[r.model] if r.split == "test" else "on training set"
        values = " & ".join(_pm(r, m).replace("±", r"$\pm$") for m in CELL_METRICS)
        lines.append(f"{DATASET_LABELS[r.dataset]} & {label} & {r.dim} & {r.n} & {values} \\\\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def render(pool: RunPool, paper: pd.DataFrame, variant: Variant = PAPER_TEXT) -> dict[str, bytes | None]:
    """File name → contents of ``table2_seeds{suffix}.{md,tex,csv}`` and ``…_pairs.csv``; ``None``
    for each (delete a stale one) while no cell has two seeds."""
    cells, pairs = table2_seeds(pool, paper, variant)
    stem = f"{STEM}{variant.suffix}"
    names = [f"{stem}.md", f"{stem}.tex", f"{stem}.csv", f"{stem}_pairs.csv"]
    if cells.empty or int(cells.n.max()) < 2:
        return dict.fromkeys(names)
    return dict(zip(names, (table2_markdown(cells, pairs, variant).encode("utf-8"),
                            table2_latex(cells, variant).encode("utf-8"),
                            cells.to_csv(index=False).encode("utf-8"),
                            pairs.to_csv(index=False).encode("utf-8"))))


def write(pool: RunPool, paper: pd.DataFrame, out: Path, variant: Variant = PAPER_TEXT) -> list[Path]:
    """Write ``table2_seeds{suffix}.{md,tex,csv}`` (and the paired comparisons' csv) when a cell has
    two seeds; otherwise remove stale files and write nothing. ``pool``: the runs of ``variant``."""
    return apply({Path(out) / name: data for name, data in render(pool, paper, variant).items()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdkge.seeds", description="Mean ± std over seeds and paired comparisons, from MLflow.")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///<repo>/mlflow.db")
    parser.add_argument("--experiments", nargs="+", default=["kdkge-umls", "kdkge-kinship"])
    parser.add_argument("--out", default="results/seeds.md")
    parser.add_argument("--from-record", nargs="?", const=str(RECORD_DIR), default=None, metavar="FOLDER",
                        help="read the runs from the run record (default folder: %(const)s) instead of the store")
    args = parser.parse_args(argv)
    df = runs_frame(args.tracking_uri, args.experiments, args.from_record)
    multi = df.groupby(CELL)["seed"].transform("nunique") > 1 if not df.empty else []
    df = df[multi] if len(df) else df
    text = markdown(summarise(df) if len(df) else pd.DataFrame(), paired(df) if len(df) else pd.DataFrame())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"{len(df)} runs in cells with several seeds -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
