"""make tables writes the equal-budget and Pareto files, and never shrinks or deletes tracked ones (unless --force)."""

from __future__ import annotations

import subprocess

import pytest

from raw_runs import raw_frame, raw_run
from kdkge.reports import equal_budget as EB
from kdkge.reports import make

BUDGET = EB.Budget("umls", "kd_distmult", 256, 3728, (
    EB.Member("kd_distmult", 256, planned_params=3728), EB.Member("distmult", 16, planned_params=3760)))


def _full():
    rows = [raw_run("umls", "kd_distmult", 256, seed=s, paper_test_mrr=0.40 + 0.01 * s, test_mrr=0.8) for s in (1, 2, 3)]
    rows += [raw_run("umls", "distmult", 16, seed=s, paper_test_mrr=0.41 + 0.007 * s, test_mrr=0.85) for s in (1, 2, 3)]
    rows += [raw_run("kinship", "distmult", 9, paper_test_mrr=0.5, test_mrr=0.6)]
    return raw_frame(rows)


def _small():  # seed 1 of the KD model only: fewer filled cells, no KINSHIP plot
    return raw_frame([raw_run("umls", "kd_distmult", 256, seed=1, paper_test_mrr=0.41, test_mrr=0.8)])


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *a],  # noqa: E731
                                    check=True, capture_output=True)
    git("init", "-q")
    return repo, git


def _make(monkeypatch, raw, out, force=False):
    monkeypatch.setattr(make, "read_runs", lambda *a, **k: (raw, "record"))
    return make.make_tables(None, out=out, log_experiment=None, budgets=[BUDGET], force=force)


def test_new_files_are_written_and_never_shrink(repo, monkeypatch, capsys):
    repo, git = repo
    out = repo / "results"
    report = _make(monkeypatch, _full(), out)
    names = {p.name for p in report.written}
    assert {"equal_budget.md", "equal_budget.csv", "equal_budget.tex", "pareto.md", "pareto_umls_paper_code.png",
            "pareto_umls_paper_code_clean.png", "pareto_kinship_paper_code.png"} <= names
    assert "| 3/5 |" in (out / "equal_budget.md").read_text()
    assert "[`equal_budget.md`](equal_budget.md)" in (out / "REPRODUCTION.md").read_text()
    assert "[`pareto.md`](pareto.md)" in (out / "REPRODUCTION.md").read_text()
    git("add", "results")
    git("commit", "-q", "-m", "results")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(make.WouldLoseResults) as exc:
        _make(monkeypatch, _small(), out)
    lost = "\n".join(exc.value.lines)
    for name in ("equal_budget.md", "equal_budget.csv", "equal_budget.tex", "pareto.md"):
        assert f"{name}: " in lost and "would lose" in lost
    assert "pareto_kinship_paper_code.png: would be deleted" in lost
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written
    report = _make(monkeypatch, _small(), out, force=True)
    assert not (out / "pareto_kinship_paper_code.png").exists()
    assert "| 1/5 |" in (out / "equal_budget.md").read_text()


def test_untracked_files_may_shrink(repo, monkeypatch):
    repo, _ = repo
    out = repo / "results"
    _make(monkeypatch, _full(), out)
    _make(monkeypatch, _small(), out)  # nothing tracked: no guard
    assert "| 1/5 |" in (out / "equal_budget.md").read_text()
