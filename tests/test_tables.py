"""kdkge.tables on a small synthetic MLflow store written through kdkge.tracking.

The runs are fake (made-up metrics, no training) but structurally real: the schema's tag and
metric names, the tracker's experiments/params/statuses, and |Θ| from the actual models.
"""

from __future__ import annotations

import re
import time

import pandas as pd
import pytest

from kdkge import tables as T
from kdkge.models import build_model
from kdkge.tracking import MlflowTracker, config_hash, find_runs

# entities, relations (with reciprocals) of our copies of the datasets
COUNTS = {"umls": (135, 92), "kinship": (104, 50)}


def log_run(uri, dataset, model, dim, test_mrr, *, valid_mrr=None, train_mrr=0.95, calibration="none",
            alpha=None, noise=0.0, epochs=1000, seed=1, status="FINISHED"):
    """One run as the Hydra app logs it: schema tags, nested params, split metrics, num_parameters."""
    tracker = MlflowTracker(uri, experiment=f"kdkge-{dataset}")
    cfg = {"dataset": {"name": dataset}, "model": model, "dim": dim,  # the Hydra app's layout
           "calibration": {"name": calibration, "alpha": alpha}, "noise_ratio": noise, "seed": seed,
           "epochs": epochs, "lr": 0.01, "batch_size": 1024}
    kd = model == "kd_distmult"
    tags = {"model": model, "dataset": dataset, "calibration": calibration,
            "alpha": "" if alpha is None else str(alpha), "noise_ratio": str(noise), "dim": dim,
            "stored_dim": int(dim ** 0.5) if kd else dim, "seed": seed, "strategy": "1vsall",
            "epochs": epochs, "config_hash": config_hash(cfg), "sweep_id": "", "git_commit": "test"}
    e, r = COUNTS[dataset]
    metrics = {"num_parameters": build_model(model, e, r, dim).num_parameters, "wall_time_s": 60.0}
    for split, mrr in (("train", train_mrr), ("valid", test_mrr if valid_mrr is None else valid_mrr),
                       ("test", test_mrr)):
        metrics |= {f"{split}_mrr": mrr, f"{split}_hits_1": mrr - 0.08, f"{split}_hits_3": min(mrr + 0.03, 1.0),
                    f"{split}_hits_10": min(mrr + 0.15, 1.0)}
    tracker.start_run(f"{model}-{dataset}-{dim}", tags=tags, params=cfg)
    tracker.log_metrics(metrics)
    tracker.end_run(status)
    time.sleep(0.005)  # distinct start times: "newest" is well defined


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    # Table 2/3 at the paper's sizes (UMLS 289/289/256, KINSHIP 289/400/400)
    log_run(uri, "umls", "distmult", 289, 0.517, train_mrr=0.995)
    log_run(uri, "umls", "kd_rel_distmult", 289, 0.531, train_mrr=0.996)
    log_run(uri, "umls", "kd_distmult", 256, 0.541, train_mrr=0.814)
    log_run(uri, "kinship", "kd_rel_distmult", 400, 0.562, train_mrr=0.914)
    log_run(uri, "kinship", "kd_distmult", 400, 0.599, train_mrr=0.705)
    # duplicates of one config: an old FINISHED run, the newest FINISHED one, then a FAILED one
    log_run(uri, "kinship", "distmult", 289, 0.300)
    log_run(uri, "kinship", "distmult", 289, 0.568, train_mrr=0.919)
    log_run(uri, "kinship", "distmult", 289, 0.990, status="FAILED")
    # selection: d=100 has the best validation MRR, d=144 the best test MRR
    log_run(uri, "umls", "distmult", 100, 0.400, valid_mrr=0.700)
    log_run(uri, "umls", "distmult", 144, 0.900, valid_mrr=0.300)
    # one calibration row of Table 3
    log_run(uri, "umls", "distmult", 289, 0.568, calibration="ls", alpha=0.1)
    # sweep cells: Table 5 (one not at the paper's settings) and Table 6; nothing for Table 4
    log_run(uri, "umls", "kd_distmult", 121, 0.357, epochs=5)
    log_run(uri, "umls", "distmult", 4, 0.475)
    log_run(uri, "kinship", "kd_rel_distmult", 4, 0.508)
    return uri


@pytest.fixture(scope="module")
def pool(store):
    return T.load_runs(store, T.DEFAULT_EXPERIMENTS)


@pytest.fixture(scope="module")
def paper():
    return T.load_paper_tables()


def body(markdown: str) -> list[str]:
    """The table lines of a rendered Markdown table (no header, no separator)."""
    return [line for line in markdown.splitlines() if line.startswith("| ")][1:]


def cells(line: str) -> list[str]:
    """The entries of a Markdown table line (escaped pipes ``\\|`` stay inside an entry)."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


# --------------------------------------------------------------------------- #
# the paper's data
# --------------------------------------------------------------------------- #


def test_paper_csv_matches_the_shared_transcription(paper):
    assert len(paper) == 262
    assert set(paper.model) == set(T.MODELS) and set(paper.dataset) == set(T.DATASETS)
    row = paper[(paper.table == 2) & (paper.dataset == "kinship") & (paper.model == "distmult")
                & (paper.split == "test")].iloc[0]
    assert (row.params, row.mrr, row.dim) == (46818, 0.568, 289)


@pytest.mark.parametrize("model", T.MODELS)
@pytest.mark.parametrize("dataset", T.DATASETS)
def test_paper_sizes_per_table(paper, dataset, model):
    squares = lambda lo, hi: [k * k for k in range(lo, hi + 1)]  # noqa: E731
    assert T.paper_dims(paper, 4, dataset, model) == squares(10, 20)
    assert T.paper_dims(paper, 5, dataset, model) == squares(11, 20)
    assert T.paper_dims(paper, 6, dataset, model) == squares(2, 10)
    table2 = {"umls": {"distmult": 289, "kd_rel_distmult": 289, "kd_distmult": 256},
              "kinship": {"distmult": 289, "kd_rel_distmult": 400, "kd_distmult": 400}}
    assert T.paper_dims(paper, 2, dataset, model) == [table2[dataset][model]]
    table3 = dict(table2, kinship=dict(table2["kinship"], kd_rel_distmult=289))
    assert T.paper_dims(paper, 3, dataset, model) == [table3[dataset][model]]


def test_paper_dims_reproduce_paper_parameter_counts(paper):
    """The dim column is the paper's counting solved for d (|E|, |R| = 136, 93 and 105, 51)."""
    counts = {"umls": (136, 93), "kinship": (105, 51)}
    rows = paper[paper.params.notna() & (paper.kind == "run")]
    for _, r in rows.iterrows():
        e, rel = counts[r.dataset]
        d, k = int(r.dim), int(round(int(r.dim) ** 0.5))
        expected = {"distmult": (e + rel + 6) * d, "kd_rel_distmult": (e + 6) * d + rel * k,
                    "kd_distmult": (e + rel + 4) * k}[r.model]
        assert expected == r.params, r.to_dict()


# --------------------------------------------------------------------------- #
# runs: status, duplicates, settings
# --------------------------------------------------------------------------- #


def test_only_finished_runs_and_newest_duplicate(pool):
    assert pool.n_fetched == 14 and pool.n_not_finished == 1
    assert len(pool.duplicates) == 1 and len(pool.duplicates[0][2]) == 1
    dm = pool.runs[(pool.runs.dataset == "kinship") & (pool.runs.model == "distmult")]
    assert dm["test_mrr"].tolist() == [0.568]
    assert (dm["superseded"] == 1).all()


def test_runs_off_paper_settings_are_flagged(pool):
    off = pool.runs[pool.runs.deviations != ""]
    assert off["deviations"].tolist() == ["epochs=5"]


def test_params_come_from_logged_metric(pool, paper):
    """|Θ| is the logged num_parameters: our data count one entity and relation fewer than the paper."""
    tables = T.build_tables(pool, paper)
    cell = tables[2].rows[0].cells["umls"]  # DistMult, d = 289
    assert cell.values["params"] == (135 + 92 + 6) * 289 == cell.paper["params"] - 2 * 289


# --------------------------------------------------------------------------- #
# tables
# --------------------------------------------------------------------------- #


def test_table2_layout_and_bold(pool, paper):
    t2 = T.build_tables(pool, paper, numbers=[2])[2]
    md = T.render_markdown(t2)
    header = cells([line for line in md.splitlines() if line.startswith("| ")][0])
    assert header == ["", "UMLS d", "\\|Θ\\|", "MRR", "@1", "@3", "@10",
                      "KINSHIP d", "\\|Θ\\|", "MRR", "@1", "@3", "@10"]
    rows = [cells(line) for line in body(md)]
    assert [r[0] for r in rows] == ["DistMult", "on training set", "KD-Rel-DistMult", "on training set",
                                    "KD-DistMult", "on training set"]
    dm, dm_train, _, _, kd, kd_train = rows
    assert dm[1:4] == ["289", "67,337", ".517"]
    assert dm_train[1:3] == ["", ""] and dm_train[3] == ".995"  # no d / |Θ| on training rows
    # KD-DistMult: fewest parameters and best test MRR on both datasets -> bold
    assert kd[2] == "**3,696**" and kd[3] == "**.541**"
    assert kd[8] == "**3,160**" and kd[9] == "**.599**"
    assert dm[3] == ".517"
    # training rows are never bold, even with the best values
    assert not any("**" in c for c in dm_train + kd_train)
    assert "Missing: 0 of 54 values" in md
    # the duplicate is said
    assert "newest of several FINISHED runs with the same config_hash" in md
    assert kd[0] == "KD-DistMult" and rows[0][0] == "DistMult"  # all at paper settings: no dagger


def test_table3_missing_cells_are_em_dashes_and_counted(pool, paper):
    t3 = T.build_tables(pool, paper, numbers=[3])[3]
    missing, expected, missing_runs, n_cells = t3.missing_counts()
    # present: the uncalibrated rows except KINSHIP KD-Rel-DistMult (Table 3 uses d = 289 there,
    # Table 2 d = 400), and UMLS DistMult LS α = .1
    assert (n_cells, missing_runs) == (60, 48)
    assert expected == 3 * 2 * 5 + 3 * 2 * 4 + 4 * 3 * 2 * 2 * 4
    assert missing == expected - (5 * 5 + 5 * 4 + 2 * 4)
    md = T.render_markdown(t3)
    assert sum(line.count(T.EM_DASH) for line in body(md)) == missing
    assert f"Missing: {missing} of {expected} values" in md
    labels = [cells(line)[0] for line in body(md)]
    assert labels[:4] == ["DistMult", "on training set", "with LS α = .1", "on training set"]
    assert labels.count("with LR α = .2") == 3 and len(labels) == 30
    ls = cells(body(md)[2])
    assert ls[1:4] == ["289", "", "**.568**"]  # calibration rows: no |Θ|; best test MRR on UMLS


def test_sweep_tables_rows_avg_and_dagger(pool, paper):
    tables = T.build_tables(pool, paper, numbers=[4, 5, 6])
    assert not tables[4].has_runs
    t5, t6 = tables[5], tables[6]
    assert len(t5.rows) == 3 * 10 + 3 and len(t6.rows) == 3 * 9 + 3
    md5 = T.render_markdown(t5)
    rows5 = [cells(line) for line in body(md5)]
    kd_first = rows5[20]
    assert kd_first[0] == "KD-DistMult †" and kd_first[1] == "121" and kd_first[3] == ".357"
    assert [r[0] for r in rows5[-3:]] == ["avg. DistMult", "avg. KD-Rel-DistMult", "avg. KD-DistMult"]
    # avg. KD-DistMult on UMLS: d = 121 (.357) and d = 256 (.541, the Table 2 run) of 10 sizes
    assert rows5[-1][2:4] == ["**3,118**", ".449"] and "UMLS KD-DistMult 2/10" in md5
    assert "epochs=5" in md5
    rows6 = [cells(line) for line in body(T.render_markdown(t6))]
    assert rows6[0][:4] == ["DistMult", "4", "932", "**.475**"]  # beats d = 100 (.400)
    assert rows6[9][7:10] == ["4", "540", ".508"]  # KD-Rel-DistMult, KINSHIP, d = 4
    assert rows6[-1][1:8] == [""] + [T.EM_DASH] * 5 + [""]  # avg. KD-DistMult: no runs at all


def test_selection_rule_uses_validation_not_test(pool, paper):
    by_paper = T.build_tables(pool, paper, "paper", numbers=[2, 3])
    by_valid = T.build_tables(pool, paper, "best-valid", numbers=[2, 3])
    assert by_paper[2].rows[0].cells["umls"].dim == 289
    chosen = by_valid[2].rows[0].cells["umls"]
    assert chosen.dim == 100 and chosen.values["mrr"] == 0.400  # not d = 144 with test MRR .900
    # Table 3's calibration rows use the selected size
    assert all(r.cells["umls"].dim == 100 for r in by_valid[3].rows if r.model == "distmult")
    assert "`best-valid`" in T.render_markdown(by_valid[2])
    with pytest.raises(ValueError):
        T.build_tables(pool, paper, "best-test")


def test_latex_and_csv(pool, paper):
    t2 = T.build_tables(pool, paper, numbers=[2])[2]
    tex = T.render_latex(t2)
    assert r"\multicolumn{6}{c}{UMLS}" in tex and r"\textbf{.541}" in tex and r"\textbf{3{,}696}" in tex
    assert tex.count(r"\\") == 2 + 6 + 0  # two header lines + six rows
    t3 = T.build_tables(pool, paper, numbers=[3])[3]
    assert "---" in T.render_latex(t3)
    df = T.table_frame(t2)
    assert list(df.columns) == T.CSV_COLUMNS and len(df) == 12
    kd = df[(df.model == "KD-DistMult") & (df.dataset == "KINSHIP") & (df.split == "test")].iloc[0]
    assert kd.params == 3160 and kd.paper_params == 3200 and "mrr" in kd.bold.split()


# --------------------------------------------------------------------------- #
# the command
# --------------------------------------------------------------------------- #


def test_make_tables_writes_everything_and_logs_to_mlflow(store, tmp_path, capsys):
    out = tmp_path / "results"
    (out).mkdir()
    (out / "table4.md").write_text("stale")
    assert T.main(["--tracking-uri", store, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Table 4: no FINISHED runs" in printed
    names = {p.name for p in out.iterdir()}
    assert names == {f"table{n}.{ext}" for n in (2, 3, 5, 6) for ext in ("md", "tex", "csv")} | {
        "REPRODUCTION.md", "mrr_vs_params_umls.png", "mrr_vs_params_kinship.png"}
    rep = (out / "REPRODUCTION.md").read_text()
    assert "Table 4: no FINISHED runs" in rep
    assert "## Runs NOT at the paper's settings" in rep and "epochs=5" in rep
    # ours | paper | Δ for a cell: KD-DistMult KINSHIP, |Θ| 3,160 vs 3,200
    line = next(l for l in rep.splitlines() if l.startswith("| KD-DistMult | KINSHIP | 400 |"))
    assert cells(line)[3:9] == ["3,160", "3,200", "-40", ".599", ".599", "±.000"]
    # claims are computed, for ours and for the paper's own numbers
    claim = next(l for l in rep.splitlines() if "beats DistMult on KINSHIP with 14.6×" in l)
    assert "ours: **holds** (test MRR .599 vs .568; 14.6× fewer" in claim
    assert "Paper's own numbers: **holds**" in claim
    calib = next(l for l in rep.splitlines() if "does not improve test MRR on KINSHIP" in l)
    assert "ours: cannot check" in calib
    best = next(l for l in rep.splitlines() if "9 out of 10" in l)
    assert "ours: **does not hold**" not in best or "KD-DistMult best in" in best
    # the outputs are one run of the tables experiment
    logged = find_runs(store, experiment=T.LOG_EXPERIMENT)
    assert len(logged) == 1 and logged.iloc[0]["tags.selection"] == "paper"
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for d in ("plots", "tables")
                 for a in MlflowClient(store).list_artifacts(logged.iloc[0]["run_id"], d)}
    assert {"plots/mrr_vs_params_umls.png", "tables/REPRODUCTION.md", "tables/table2.md"} <= artifacts


def test_no_store_is_not_an_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    report = T.make_tables(uri, out=tmp_path / "results", log_experiment=None)
    assert report.tables == {} and set(report.skipped) == {2, 3, 4, 5, 6}
    assert "nothing written" in capsys.readouterr().out
    assert not (tmp_path / "results").exists() and not (tmp_path / "none.db").exists()


def test_empty_pool_builds_empty_tables(paper):
    tables = T.build_tables(T.normalise_runs(pd.DataFrame()), paper)
    assert not any(t.has_runs for t in tables.values())
    md = T.render_markdown(tables[5])
    assert "Missing: 300 of 300 values" in md


def test_table2_over_seeds_mean_std_and_paired_tests(tmp_path):
    """make tables' multi-seed Table 2 (kdkge.seed_tables): values against hand computations."""
    from kdkge import seed_tables

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    for seed, mrr in enumerate(base, start=1):
        log_run(uri, "umls", "distmult", 289, mrr, seed=seed, train_mrr=0.9)
        log_run(uri, "umls", "kd_distmult", 256, mrr + (0.05 if seed != 3 else -0.01), seed=seed)
    log_run(uri, "umls", "kd_rel_distmult", 289, 0.6, seed=2, epochs=50)  # not at the paper's settings: ignored
    log_run(uri, "umls", "distmult", 144, 0.9, seed=2)  # not Table 2's size: ignored
    pool = T.load_runs(uri, ["kdkge-umls"])
    cells, pairs = seed_tables.build(pool, T.load_paper_tables())
    dm = cells[(cells.model == "distmult") & (cells.split == "test") & (cells.dataset == "umls")].iloc[0]
    assert (dm.n, dm.dim, dm.seeds) == (5, 289, "1,2,3,4,5")
    assert dm.mrr_mean == pytest.approx(0.5) and dm.mrr_std == pytest.approx(0.0158113883, rel=1e-6)
    assert dm.hits_1_mean == pytest.approx(0.42)
    assert dm.mrr_ci_low < 0.5 < dm.mrr_ci_high
    train = cells[(cells.model == "distmult") & (cells.split == "train") & (cells.dataset == "umls")].iloc[0]
    assert train.mrr_mean == pytest.approx(0.9) and train.mrr_std == pytest.approx(0.0, abs=1e-12)
    assert cells[(cells.model == "kd_rel_distmult") & (cells.dataset == "umls")].n.tolist() == [0, 0]
    pair = pairs.set_index("comparison").loc["KD-DistMult − DistMult"]
    assert (pair.n, pair.wins, pair.losses) == (5, 4, 1)
    assert pair.mean_diff == pytest.approx((4 * 0.05 - 0.01) / 5)
    assert pair.sign_p == pytest.approx(6 / 16)  # 2·P(W ≤ 1), W ~ Bin(5, ½)
    written = seed_tables.write(pool, T.load_paper_tables(), tmp_path)
    assert [p.name for p in written] == ["table2_seeds.md", "table2_seeds.tex", "table2_seeds.csv", "table2_seeds_pairs.csv"]
    text = written[0].read_text()
    assert "| DistMult | test | 289 | 5 (1,2,3,4,5) | 0.500 ± 0.016 |" in text
    assert "| UMLS | KD-DistMult − DistMult | 5 | +0.038 |" in text and "4/1 | 0.375 |" in text
    assert r"0.500 $\pm$ 0.016" in written[1].read_text()


def test_table2_over_seeds_is_skipped_with_one_seed(store, tmp_path):
    from kdkge import seed_tables

    stale = tmp_path / "table2_seeds.md"
    stale.write_text("old")
    assert seed_tables.write(T.load_runs(store, list(T.DEFAULT_EXPERIMENTS)), T.load_paper_tables(), tmp_path) == []
    assert not stale.exists()


def test_model_selection_report_final_vs_best_validation_epoch(tmp_path):
    from kdkge import selection_report
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    log_run(uri, "umls", "distmult", 289, 0.80)
    log_run(uri, "umls", "kd_distmult", 256, 0.30)
    log_run(uri, "umls", "distmult", 100, 0.70, epochs=50)  # not at the paper's settings: left out
    client = MlflowClient(uri)
    runs = find_runs(uri, experiment="kdkge-umls").set_index("tags.dim")
    best = {"289": (200, 0.90, 0.88), "256": (1000, 0.30, 0.30), "100": (50, 0.7, 0.7)}
    for dim, (epoch, valid, test) in best.items():
        for key, value in (("best_epoch", epoch), ("best_valid_mrr", valid), ("best_test_mrr", test), ("best_train_mrr", 0.9)):
            client.log_metric(runs.loc[dim, "run_id"], key, value)
    raw = T.fetch_runs(uri, ["kdkge-umls"])
    df = selection_report.build(T.normalise_runs(raw), raw).set_index("model")
    assert sorted(df.index) == ["distmult", "kd_distmult"]
    assert df.loc["distmult", "best_epoch"] == 200
    assert df.loc["distmult", "delta_test_mrr"] == pytest.approx(0.08)
    assert df.loc["kd_distmult", "delta_test_mrr"] == pytest.approx(0.0)
    [md, csv] = selection_report.write(T.normalise_runs(raw), raw, tmp_path)
    text = md.read_text()
    assert "2 runs; in 1 of them the best validation MRR came before the last epoch." in text
    assert "| UMLS | DistMult | 289 | none | 0 | 0.800 | 0.800 | 200 | 0.900 | 0.880 | +0.080 |" in text
    assert csv.exists()
