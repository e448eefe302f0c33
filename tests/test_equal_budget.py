"""Equal-budget sizes (issue 18) are computed from the models, and the sweep file is what the generator writes."""

from pathlib import Path

import pytest

from kdkge import equal_budget

ROOT = Path(__file__).resolve().parent.parent


def test_distmult_16_has_kd_distmults_budget_on_umls():
    assert equal_budget.parameters("kd_distmult", 256, "umls", "paper_code") == 3728  # the paper's Table 2
    assert equal_budget.closest_width("distmult", 3728, "umls", "paper_code") == (16, 3760)
    dim, count = equal_budget.closest_width("kd_rel_distmult", 3728, "umls", "paper_code")
    assert dim == 25 and count == equal_budget.parameters("kd_rel_distmult", 25, "umls", "paper_code")


def test_the_closest_width_is_closest():
    budget = equal_budget.parameters("kd_rel_distmult", 400, "kinship", "paper_code")
    dim, count = equal_budget.closest_width("distmult", budget, "kinship", "paper_code")
    for other in (dim - 1, dim + 1):
        assert abs(equal_budget.parameters("distmult", other, "kinship", "paper_code") - budget) >= abs(count - budget)


def test_the_sweep_file_is_up_to_date():
    assert (ROOT / "sweeps" / "equal_budget.yaml").read_text() == equal_budget.sweep_yaml(equal_budget.plan("paper_code"))


def test_a_model_without_a_size_rule_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"model 'transe' has no size rule for an equal-budget search: use one of distmult, "):
        equal_budget.closest_width("transe", 1000, "umls")


def test_the_command_line_names_the_choices_in_one_line(capsys):
    assert equal_budget.main(["--model", "transe", "--dim", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: model 'transe' has no size rule for an equal-budget search: use one of distmult, "
                   "kd_rel_distmult, kd_distmult, scaled_distmult, complex, kd_rel_complex, kd_complex"]


def test_the_command_line_sizes_any_model(capsys):
    assert equal_budget.main(["--model", "kd_distmult", "--dim", "256", "--dataset", "umls"]) == 0
    out = capsys.readouterr().out
    assert "kd_distmult      d=256  |Θ| = 3,728  ≈  distmult d=16 (3,760)" in out
