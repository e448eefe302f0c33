"""kdkge.tables on a small synthetic MLflow store written through kdkge.tracking.

The runs are fake (made-up metrics, no training) but structurally real: the schema's tag and
metric names, the tracker's experiments/params/statuses, and |Θ| from the actual models.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from fake_runs import log_run
from kdkge import tables as T
from kdkge.tracking import find_runs


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
    """The lines of the first Markdown table (no header, no separator): the table, not the size block."""
    lines, started = [], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            started = True
            lines.append(line)
        elif started:
            break
    return [line for line in lines if line.startswith("| ")][1:]


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


def test_make_tables_writes_everything_and_logs_to_mlflow(store, tmp_path, capsys, monkeypatch):
    from kdkge.reports import make

    monkeypatch.setattr(make, "_git_commit", lambda: "a1b2c3d")  # the checkout's HEAD (logged with the tables run)
    out = tmp_path / "results"
    (out).mkdir()
    (out / "table4.md").write_text("stale")
    assert T.main(["--tracking-uri", store, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Table 4: no FINISHED runs" in printed
    names = {p.name for p in out.iterdir()}
    assert names == {f"table{n}.{ext}" for n in (2, 3, 5, 6) for ext in ("md", "tex", "csv")} | {
        "REPRODUCTION.md", "mrr_vs_params_umls.png", "mrr_vs_params_kinship.png",
        "equal_budget.md", "equal_budget.csv", "equal_budget.tex",  # the KD models of Table 2 at seed 1
        "pareto.md", "pareto_umls_paper_text.png", "pareto_kinship_paper_text.png"}
    rep = (out / "REPRODUCTION.md").read_text()
    assert "Table 4: no FINISHED runs" in rep
    assert "## Runs NOT at the paper's settings" in rep and "epochs=5" in rep
    # it names the code that made its runs (their git_commit tags: "test" for the 12 FINISHED, newest-per-hash
    # runs of the store), never the checkout's HEAD, so a fresh clone at a later commit rebuilds the same bytes
    assert "- Code that made these runs (their `git_commit` tags; runs per commit): `test` (12)" in rep.splitlines()
    assert "a1b2c3d" not in rep
    # paper | code 2022 | code clean | text for a cell: KD-DistMult KINSHIP, |Θ| 3,200 (paper) vs 3,160 (ours)
    line = next(l for l in rep.splitlines() if l.startswith("| KD-DistMult | KINSHIP | 400 |"))
    assert cells(line)[3:10] == ["3,200", T.EM_DASH, "3,160", ".599", T.EM_DASH, T.EM_DASH, ".599"]
    assert "- paper_code: 0 of 12 cells have a run" in rep and "- paper_text: 12 of 12 cells have a run" in rep
    # claims are computed, under each protocol and for the paper's own numbers
    lines = rep.splitlines()
    at = next(i for i, l in enumerate(lines) if "beats DistMult on KINSHIP with 14.6×" in l)
    claim = "\n".join(lines[at:at + 5])
    assert "  - paper_text: **holds** (test MRR .599 vs .568; 14.6× fewer" in claim
    assert "  - paper_code, 2022 split: cannot check (missing runs)" in claim
    assert "  - the paper's own numbers: **holds**" in claim
    at = next(i for i, l in enumerate(lines) if "does not improve test MRR on KINSHIP" in l)
    assert "  - paper_text: cannot check" in "\n".join(lines[at:at + 5])
    assert "## Why the paper's numbers are what they are" in rep
    # the outputs are one run of the tables experiment
    logged = find_runs(store, experiment=T.LOG_EXPERIMENT)
    assert len(logged) == 1 and logged.iloc[0]["tags.selection"] == "paper"
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for d in ("plots", "tables")
                 for a in MlflowClient(store).list_artifacts(logged.iloc[0]["run_id"], d)}
    assert {"plots/mrr_vs_params_umls.png", "tables/REPRODUCTION.md", "tables/table2.md"} <= artifacts


def test_no_store_is_not_an_error(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'none.db'}"
    report = T.make_tables(uri, out=tmp_path / "results", log_experiment=None, record_dir=tmp_path / "no-record")
    assert report.tables == {} and set(report.skipped) == {2, 3, 4, 5, 6}
    assert "nothing written" in capsys.readouterr().out
    assert not (tmp_path / "results").exists() and not (tmp_path / "none.db").exists()


def test_empty_pool_builds_empty_tables(paper):
    tables = T.build_tables(T.normalise_runs(pd.DataFrame()), paper)
    assert not any(t.has_runs for t in tables.values())
    md = T.render_markdown(tables[5])
    assert "Missing: 300 of 300 values" in md


def test_table2_over_seeds_mean_std_and_paired_tests(tmp_path):
    """make tables' multi-seed Table 2 (kdkge.reports.seeds): values against hand computations."""
    from kdkge.reports import seeds as seed_tables

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    for seed, mrr in enumerate(base, start=1):
        log_run(uri, "umls", "distmult", 289, mrr, seed=seed, train_mrr=0.9)
        log_run(uri, "umls", "kd_distmult", 256, mrr + (0.05 if seed != 3 else -0.01), seed=seed)
    log_run(uri, "umls", "kd_rel_distmult", 289, 0.6, seed=2, epochs=50)  # not at the paper's settings: ignored
    log_run(uri, "umls", "distmult", 144, 0.9, seed=2)  # not Table 2's size: ignored
    pool = T.load_runs(uri, ["kdkge-umls"])
    cells, pairs = seed_tables.table2_seeds(pool, T.load_paper_tables())
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
    assert "| DistMult | test | 289 | 5 (1,2,3,4,5) | .500 ± .016 |" in text
    assert "| UMLS | KD-DistMult − DistMult | 5 | +.038 |" in text and "4/1 | 0.3750 (0.0625) |" in text
    assert "cannot go below 2·0.5ⁿ (n = 5: 0.0625)" in text
    assert r".500 $\pm$ .016" in written[1].read_text()
    # scipy's statistics: the paired t-test and the bootstrap interval
    from scipy.stats import ttest_rel

    kd = [m + (0.05 if s != 3 else -0.01) for s, m in enumerate(base, start=1)]
    assert pair.t_p == pytest.approx(ttest_rel(kd, base).pvalue)
    assert pair.ci_low < pair.mean_diff < pair.ci_high


def test_table2_over_seeds_is_skipped_with_one_seed(store, tmp_path):
    from kdkge.reports import seeds as seed_tables

    stale = tmp_path / "table2_seeds.md"
    stale.write_text("old")
    assert seed_tables.write(T.load_runs(store, list(T.DEFAULT_EXPERIMENTS)), T.load_paper_tables(), tmp_path) == []
    assert not stale.exists()


def test_model_selection_report_final_vs_best_validation_epoch(tmp_path):
    from kdkge.reports import selection as selection_report
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
    assert "| UMLS | DistMult | 289 | none | 0 | .800 | .800 | 200 | .900 | .880 | +.080 |" in text
    assert csv.exists()


# --------------------------------------------------------------------------- #
# protocols: paper_text (today's files) and paper_code (table*_paper_code.*), ablation runs
# --------------------------------------------------------------------------- #

TABLE2 = {("umls", "distmult"): 289, ("umls", "kd_rel_distmult"): 289, ("umls", "kd_distmult"): 256,
          ("kinship", "distmult"): 289, ("kinship", "kd_rel_distmult"): 400, ("kinship", "kd_distmult"): 400}
SEEDS = (1, 2)


def _mrr(kind: str, dataset: str, model: str, seed: int) -> float:
    """A made-up MRR per kind of number, configuration and seed (distinct everywhere)."""
    base = {"text": 0.40, "code_clean": 0.50, "code22": 0.60, "code_bce22": 0.30, "code_bce_clean": 0.20,
            "text_ce": 0.45, "best22": 0.65}[kind]
    return round(base + 0.01 * T.MODELS.index(model) + 0.1 * T.DATASETS.index(dataset) + 0.002 * seed, 6)


@pytest.fixture(scope="module")
def protocol_store(tmp_path_factory):
    """Table 2's configurations over two seeds: untagged paper_text runs (recorded before protocols
    existed), paper_code runs with the 2022 split and a best-validation model, and ablation runs
    (paper_code with BCE, paper_text with softmax CE); plus a small size grid under paper_code."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('protocols') / 'mlflow.db'}"
    for (ds, m), d in TABLE2.items():
        for seed in SEEDS:
            log_run(uri, ds, m, d, _mrr("text", ds, m, seed), seed=seed)
            log_run(uri, ds, m, d, _mrr("code_clean", ds, m, seed), seed=seed, protocol="paper_code",
                    paper_test_mrr=_mrr("code22", ds, m, seed),
                    best=(200, 0.7, _mrr("code_clean", ds, m, seed) + 0.01, _mrr("best22", ds, m, seed)))
            log_run(uri, ds, m, d, _mrr("code_bce_clean", ds, m, seed), seed=seed, protocol="paper_code", loss="bce",
                    paper_test_mrr=_mrr("code_bce22", ds, m, seed))
        log_run(uri, ds, m, d, _mrr("text_ce", ds, m, 1), protocol="paper_text", loss="softmax_ce")
    # the size grid of UMLS DistMult under paper_code: d = 100 has the best validation MRR, d = 144 the best test MRR
    log_run(uri, "umls", "distmult", 100, 0.40, valid_mrr=0.99, protocol="paper_code", paper_test_mrr=0.41)
    log_run(uri, "umls", "distmult", 144, 0.40, valid_mrr=0.10, protocol="paper_code", paper_test_mrr=0.99)
    return uri


@pytest.fixture(scope="module")
def protocol_pool(protocol_store):
    return T.load_runs(protocol_store, T.DEFAULT_EXPERIMENTS)


def test_default_losses_are_the_protocols():
    from kdkge.experiment import PROTOCOL_LOSS

    assert T.DEFAULT_LOSS == PROTOCOL_LOSS
    assert (T.PAPER_TEXT.protocol, T.PAPER_TEXT.loss, T.PAPER_TEXT.suffix) == ("paper_text", "bce", "")
    assert (T.PAPER_CODE.protocol, T.PAPER_CODE.loss, T.PAPER_CODE.test_split) == ("paper_code", "softmax_ce", "paper_test")


def test_untagged_runs_count_as_paper_text_with_bce(protocol_pool):
    runs = protocol_pool.runs
    counts = runs.groupby(["protocol", "loss"]).size().to_dict()
    assert counts == {("paper_code", "bce"): 12, ("paper_code", "softmax_ce"): 14, ("paper_text", "bce"): 12,
                      ("paper_text", "softmax_ce"): 6}
    code = runs[(runs.protocol == "paper_code") & (runs.loss == "softmax_ce") & (runs.dim == 289)
                & (runs.dataset == "umls") & (runs.model == "distmult") & (runs.seed == 1)].iloc[0]
    assert code.paper_test_mrr == _mrr("code22", "umls", "distmult", 1) and code.best_epoch == 200
    assert code.best_paper_test_mrr == _mrr("best22", "umls", "distmult", 1)
    assert runs[runs.protocol == "paper_text"]["paper_test_mrr"].isna().all()


def test_each_protocol_has_its_tables_and_ablation_runs_are_excluded(protocol_pool, paper):
    text = T.build_tables(protocol_pool, paper, numbers=[2], variant=T.PAPER_TEXT)[2]
    code = T.build_tables(protocol_pool, paper, numbers=[2], variant=T.PAPER_CODE)[2]
    runs = protocol_pool.runs.set_index("run_id")
    for table, protocol, loss in ((text, "paper_text", "bce"), (code, "paper_code", "softmax_ce")):
        ids = [c.run_id for c in table.run_cells]
        assert all(ids) and {(runs.loc[i, "protocol"], runs.loc[i, "loss"]) for i in ids} == {(protocol, loss)}
    dm_text, dm_code = text.rows[0].cells["umls"], code.rows[0].cells["umls"]
    assert dm_text.values["mrr"] == _mrr("text", "umls", "distmult", 1)  # the seed-1 run
    assert dm_code.values["mrr"] == _mrr("code22", "umls", "distmult", 1)  # the authors' 2022 split
    assert dm_code.values["params"] == (136 + 94 + 6) * 289  # their vocabulary (one NaN entity/relation more)
    assert code.rows[1].cells["umls"].values["mrr"] == 0.95  # "on training set": train metrics
    clean = T.build_tables(protocol_pool, paper, numbers=[2], variant=T.PAPER_CODE_CLEAN)[2]
    assert clean.rows[0].cells["umls"].values["mrr"] == _mrr("code_clean", "umls", "distmult", 1)
    md = T.render_markdown(code)
    assert md.startswith("## Table 2. Link prediction results on UMLS and KINSHIP (ours, paper_code, 2022 split)")
    assert "the authors' 2022 test split ranked as their code did" in md
    assert T.render_markdown(text).startswith("## Table 2. Link prediction results on UMLS and KINSHIP (ours)\n")
    assert r"\label{tab:kdkge-table2-paper-code}" in T.render_latex(code)


def test_sizes_chosen_by_validation_and_by_test(protocol_pool, paper):
    code = T.build_tables(protocol_pool, paper, numbers=[2], variant=T.PAPER_CODE)[2]
    by = {(c.dataset, c.model): c for c in code.sizes}
    dm = by["umls", "distmult"]
    assert (dm.n_sizes, dm.paper_dim, dm.valid_dim, dm.test_dim) == (3, 289, 100, 144)
    assert (dm.valid_valid, dm.valid_test, dm.test_test) == (0.99, 0.41, 0.99)  # test MRR on the 2022 split
    assert by["kinship", "kd_distmult"].n_sizes == 1
    md = T.render_markdown(code)
    assert "### Sizes chosen over the size grid" in md
    row = next(l for l in md.splitlines() if l.startswith("| DistMult | 289 ("))
    assert cells(row)[1:5] == [f"289 ({T.fmt_metric(_mrr('code22', 'umls', 'distmult', 1))})", "100 (.410; valid .990)",
                               "144 (.990)", "3"]


def test_reproduction_compares_every_protocol_and_computes_the_ablation(protocol_store, tmp_path):
    out = tmp_path / "results"
    assert T.main(["--tracking-uri", protocol_store, "--out", str(out), "--no-log"]) == 0
    names = {p.name for p in out.iterdir()}
    for stem in ("table2", "table2_paper_code", "table2_seeds", "table2_seeds_paper_code"):
        assert {f"{stem}.md", f"{stem}.tex", f"{stem}.csv"} <= names
    assert {"model_selection_paper_code.md", "mrr_vs_params_umls_paper_code.png", "REPRODUCTION.md"} <= names
    assert "model_selection.md" not in names  # untagged runs have no best-validation model here
    rep = (out / "REPRODUCTION.md").read_text()
    assert "- paper_code: 12 of 12 cells have a run, 0 of 54 values missing on the 2022 split" in rep
    assert "- paper_text: 12 of 12 cells have a run, 0 of 54 values missing" in rep
    line = next(l for l in rep.splitlines() if l.startswith("| DistMult | UMLS | 289 |"))
    f = T.fmt_metric
    assert cells(line)[6:10] == [".517", f(_mrr("code22", "umls", "distmult", 1)),
                                 f(_mrr("code_clean", "umls", "distmult", 1)), f(_mrr("text", "umls", "distmult", 1))]
    ablation = rep[rep.index("## Why the paper's numbers are what they are"):]
    assert "| `paper_code` | `softmax_ce` | 2 (1,2) |" in ablation and "| `paper_text` | `softmax_ce` | 1 (1) |" in ablation
    vals = [_mrr("code22", "umls", "distmult", s) for s in SEEDS]
    mean, std = sum(vals) / 2, abs(vals[0] - vals[1]) / 2 ** 0.5
    assert f"| `paper_code` | `softmax_ce` | 2022 | final | {f(mean)} ± {f(std)} (2) |" in ablation
    assert "| `paper_text` | `bce` | clean | best-valid | no runs |" in ablation
    loss_row = next(l for l in ablation.splitlines() if l.startswith("| loss | paper_code/softmax_ce/2022/final"))
    d = _mrr("code_bce22", "umls", "distmult", 1) - _mrr("code22", "umls", "distmult", 1)
    assert cells(loss_row)[3] == f"{T.fmt_delta('mrr', d, 0.0)} ± .000 (2)"
    proto = next(l for l in ablation.splitlines() if l.startswith("| protocol | paper_code"))
    assert cells(proto)[3] == "-.050 (1)"  # text_ce − code_clean, seed 1 only: one common seed


def test_make_tables_refuses_to_shrink_tracked_results(store, tmp_path, capsys):
    """A smaller store must not delete or shrink git-tracked results files unless --force."""
    import subprocess

    repo = tmp_path / "repo"
    out = repo / "results"
    out.mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *a],  # noqa: E731
                                    check=True, capture_output=True)
    git("init", "-q")
    assert T.main(["--tracking-uri", store, "--out", str(out), "--no-log"]) == 0
    git("add", "results")
    git("commit", "-q", "-m", "results")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    small = f"sqlite:///{tmp_path / 'small.db'}"
    log_run(small, "umls", "distmult", 289, 0.517)
    capsys.readouterr()
    assert T.main(["--tracking-uri", small, "--out", str(out), "--no-log"]) == T.EXIT_WOULD_LOSE
    err = capsys.readouterr().err.splitlines()
    lost = [line for line in err if line.startswith("would lose: ")]
    assert any("table2.md: " in line and "would lose" in line[12:] for line in lost)
    assert any("table6.md: would be deleted" in line for line in lost)  # the small store has no Table 6 run
    assert len(lost) == len({line.split(": ")[1] for line in lost})  # one line per file
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written
    # the same runs again: nothing is lost, so it writes
    assert T.main(["--tracking-uri", store, "--out", str(out), "--no-log"]) == 0
    assert T.main(["--tracking-uri", small, "--out", str(out), "--no-log", "--force"]) == 0
    assert not (out / "table6.md").exists() and (out / "table2.md").read_bytes() != before["table2.md"]


def test_filled_cells_of_results_files():
    from pathlib import Path

    from kdkge.reports.guard import filled_cells

    md = "x 12\n\n| a | b | c |\n|---|---:|---|\n| DistMult | .517 | — |\n| no runs | 0 | 3 (1,2,3) |\n"
    assert filled_cells(Path("t.md"), md.encode()) == 2
    assert filled_cells(Path("t.csv"), b"a,b,c\n1,,x\n") == 2
    assert filled_cells(Path("t.tex"), b"% 1 & 2 \\\\\nDistMult & 289 & --- & .5 \\\\\n") == 2
    assert filled_cells(Path("t.png"), b"\x89PNG") == 1 and filled_cells(Path("t.md"), None) == 0


def test_reproduction_counts_a_stacked_jobs_wall_time_once():
    """The runs of a stacked job each log the job's wall time; the report's total counts it once."""
    from kdkge.reports.reproduction import job_wall_time
    from kdkge.reports.tables import Cell

    stack = [Cell(dataset="umls", run_id=f"s{k}", wall_time_s=100.0, stack_id="abc") for k in range(5)]
    alone = [Cell(dataset="umls", run_id="a", wall_time_s=30.0), Cell(dataset="umls", run_id="b", wall_time_s=20.0)]
    untimed = [Cell(dataset="umls", run_id="c")]
    assert job_wall_time(stack + alone + untimed) == (150.0, 3)
    assert job_wall_time([]) == (0, 0)
