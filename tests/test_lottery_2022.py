"""The NaN rows' lottery redrawn (kdkge.lottery_2022) against slow formulas, on trained float64 runs."""

import math

import pytest
import torch

from kdkge.data_2022 import paper_filter_triples
from kdkge.experiment import RunSpec, run
from kdkge.lottery_2022 import nan_lottery, nan_query, nan_row_mrr, relation_draws
from kdkge.schema import PAPER_TEST_LOTTERY_METRICS, PAPER_TEST_LOTTERY_QUANTILES
from kdkge.split_2022 import PaperTest, breakdown


@pytest.fixture(scope="module", params=["distmult", "kd_distmult"])
def trained(request):
    """A paper_code run on UMLS, 2 epochs, float64: trained enough that the ranking depends on r_NaN."""
    dim = 16
    [result] = run([RunSpec(dataset="umls", model=request.param, dim=dim, epochs=2, batch_size=512,
                            dtype="float64", protocol="paper_code")], progress=False)
    return result.model.eval(), result.kg


def _bn(norm, x):
    """Batch norm in eval mode, written out: (x − running mean) / √(running var + ε) · γ + β."""
    bn = norm.norm
    return (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _slow_nan_row_mrr(model, kg, vector):
    """Score every entity for the (NaN, NaN) query by the model's formula written out, then rank each
    NaN row's answer among the entities that are not another known tail of (NaN, NaN)."""
    paper_test = PaperTest.of(kg)
    head, relation, _, _ = nan_query(paper_test)
    with torch.no_grad():
        return _slow_ranks(model, kg, vector, head, relation)


def _slow_ranks(model, kg, vector, head, relation):
    e = model.entities.weight[:, 0].detach()
    h = _bn(model.norm_head, e[head])
    r = _bn(model.norm_relation, vector.to(e.dtype))
    if model.name == "distmult":
        query = _bn(model.norm_product, h * r)
    else:  # kd_distmult, closed form ⟨h, r⟩ · (h ∘ r)
        query = (h * r).sum() * (h * r)
    scores = [float((query * e[x]).sum()) for x in range(kg.num_entities)]
    known = {t for hh, rr, t in paper_filter_triples(kg).tolist() if (hh, rr) == (head, relation)}
    reciprocal = []
    for hh, rr, answer in kg.paper_test.tolist():
        if (hh, rr) != (head, relation):
            continue
        others = [x for x in range(kg.num_entities) if x != answer and x not in known]
        rank = 1 + sum(scores[x] > scores[answer] for x in others)
        reciprocal.append(1.0 / rank)
    return sum(reciprocal) / len(reciprocal)


def test_the_runs_own_vector_gives_its_logged_nan_row_mrr(trained):
    model, kg = trained
    _, relation, _, _ = nan_query(PaperTest.of(kg))
    own = model.relations.weight[relation, 0].detach().clone()
    [[mrr]] = nan_row_mrr(model, PaperTest.of(kg), own[None]).tolist()
    # one weighted row per distinct answer instead of every row: equal up to the order of the sum
    assert mrr == pytest.approx(breakdown(model, kg)["paper_test_nan_mrr"], rel=1e-12)


def test_the_nan_rows_collapse_to_one_weighted_row_per_distinct_answer():
    from kdkge.data_2022 import load_dataset_2022

    for name, rows, distinct in (("umls", 643, 112), ("kinship", 1062, 104)):
        paper_test = PaperTest.of(load_dataset_2022(name))
        _, _, task, weights = nan_query(paper_test)
        assert (len(task), float(weights.sum())) == (distinct, rows)
        nan_answers = paper_test.task.answers[paper_test.groups["nan"]].tolist()
        assert sorted(weights.tolist()) == sorted(float(nan_answers.count(a)) for a in task.answers.tolist())


def test_nan_row_mrr_against_the_slow_formula(trained):
    model, kg = trained
    vectors = relation_draws(model, draws=4, seed=7)
    fast = nan_row_mrr(model, PaperTest.of(kg), vectors)[:, 0].tolist()
    slow = [_slow_nan_row_mrr(model, kg, v) for v in vectors]
    assert fast == pytest.approx(slow, rel=1e-12)
    assert len(set(round(x, 12) for x in fast)) > 1  # the draws do move the ranking


def test_draws_follow_the_relation_tables_initialisation(trained):
    model, _ = trained
    table = model.relations
    draws = relation_draws(model, draws=4000, seed=1)
    assert torch.equal(draws, relation_draws(model, draws=4000, seed=1))  # deterministic
    assert not torch.equal(draws, relation_draws(model, draws=4000, seed=2))
    std = math.sqrt(2.0 / (table.num + table.width))
    n = draws.numel()
    # sample mean and std of n i.i.d. normals: 5 standard errors
    assert abs(float(draws.mean())) < 5 * std / math.sqrt(n)
    assert abs(float(draws.std()) / std - 1) < 5 / math.sqrt(2 * n)
    # and the same law as the initialisation itself (StackedEmbedding.reset_parameters)
    fresh = type(table)(table.num, table.width, 1)
    fresh.reset_parameters([torch.Generator().manual_seed(3)])
    assert abs(float(fresh.weight.std()) / std - 1) < 5 / math.sqrt(2 * fresh.weight.numel())


def test_the_lottery_summarises_its_draws_and_leaves_the_model_as_it_was(trained):
    model, kg = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    [metrics] = nan_lottery(model, kg, draws=200, seed=5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(metrics) == set(PAPER_TEST_LOTTERY_METRICS)
    assert metrics["paper_test_nan_lottery_draws"] == 200
    mrr = nan_row_mrr(model, PaperTest.of(kg), relation_draws(model, 200, 5))[:, 0]
    assert metrics["paper_test_nan_lottery_mrr_mean"] == pytest.approx(float(mrr.mean()), rel=1e-12)
    assert metrics["paper_test_nan_lottery_mrr_max"] == float(mrr.max())
    ordered = sorted(mrr.tolist())
    for p in PAPER_TEST_LOTTERY_QUANTILES:  # linear interpolation between order statistics
        pos = p / 100 * (len(ordered) - 1)
        lo, frac = int(math.floor(pos)), pos - math.floor(pos)
        slow = ordered[lo] + frac * (ordered[min(lo + 1, len(ordered) - 1)] - ordered[lo])
        assert metrics[f"paper_test_nan_lottery_mrr_q{p:02d}"] == pytest.approx(slow, rel=1e-12, abs=1e-15)
    # the (NaN, NaN) query is filtered down to the chance candidates: every outcome lies in (0, 1]
    assert 0 < ordered[0] <= ordered[-1] <= 1


def test_backfill_logs_the_lottery_into_a_finished_paper_code_run_from_its_checkpoint(hydra_conf, tmp_path):
    """``python -m kdkge.backfill_2022``: the lottery of the run's checkpoint lands in the run, once."""
    from hydra import compose

    import kdkge.app as app
    from kdkge.backfill_2022 import backfill
    from kdkge.checkpoints import load_checkpoint
    from kdkge.experiment import prepare_data
    from kdkge.store import RunStore
    from kdkge.tracking import ensure_store

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ensure_store(uri)
    app.train(compose("train", overrides=["dataset=umls", "model=kd_distmult", "dim=16", "epochs=2", "threads=1",
                                          "progress=false", "batch_size=512", "protocol=paper_code",
                                          f"tracking.uri={uri}", "tracking.experiment=lottery"]))
    store = RunStore(uri)
    [run_id] = store.frame("lottery")["run_id"].tolist()
    assert backfill(uri, ["lottery"]) == 1
    assert backfill(uri, ["lottery"]) == 0  # nothing left to do
    logged = store.frame("lottery").iloc[0]
    trained = load_checkpoint(store.download(run_id, "checkpoint/model.pt", str(tmp_path)))
    [expected] = nan_lottery(trained.model, prepare_data(trained.spec))
    for key, value in expected.items():
        assert logged[f"metrics.{key}"] == pytest.approx(value, rel=1e-12), key
