"""The paper's vocabulary is defined once (kdkge.reports.paper); copies elsewhere must say the same."""

from __future__ import annotations

import importlib

import pytest

from kdkge.reports import paper


def _copy(module: str, name: str):
    value = getattr(importlib.import_module(module), name, None)
    if value is None:
        pytest.skip(f"{module}.{name} is gone (it may import kdkge.reports.paper now)")
    return value


def test_calibrations_and_their_option_files():
    assert paper.CALIBRATION_OPTIONS == ("none", "ls_0.1", "ls_0.2", "lr_0.1", "lr_0.2")
    assert paper.calibration_option("lr", 0.2) == "lr_0.2" and paper.calibration_option("none") == "none"
    from kdkge.config import CONF_DIR

    assert all((CONF_DIR / "calibration" / f"{name}.yaml").exists() for name in paper.CALIBRATION_OPTIONS)


def test_the_sizes_are_the_papers():
    assert paper.RANGE_SIZES[0] == 1 and paper.RANGE_SIZES[-1] == 10_000 and len(paper.RANGE_SIZES) == 100
    assert paper.TABLE_SIZES == tuple(k * k for k in range(2, 21))
    frame = paper.load_paper_tables()
    for (dataset, model), dim in paper.TABLE2_DIMS.items():
        assert paper.paper_dims(frame, 2, dataset, model) == [dim]
    for (dataset, model), dim in paper.TABLE3_DIMS.items():
        assert paper.paper_dims(frame, 3, dataset, model) == [dim]


@pytest.mark.parametrize("module, name, expected", [
    ("kdkge.sweeps", "RANGE_SIZES", paper.RANGE_SIZES),
    ("kdkge.sweeps", "TABLE_SIZES", paper.TABLE_SIZES),
    ("kdkge.sweeps", "PAPER_CALIBRATIONS", paper.CALIBRATION_OPTIONS),
    ("kdkge.bench", "CALIBRATIONS", paper.CALIBRATIONS),
    ("kdkge.bench", "MODELS", paper.MODELS),
    ("kdkge.bench", "DATASETS", paper.DATASETS),
    ("kdkge.bench", "SIZES", paper.TABLE_SIZES),
    ("kdkge.experiment", "PROTOCOL_LOSS", paper.PROTOCOL_LOSS),
])
def test_copies_elsewhere_agree(module, name, expected):
    assert _copy(module, name) == expected


def test_other_copies_agree():
    bench = _copy("kdkge.bench", "TABLE23_DIM")
    assert bench == {m: paper.TABLE2_DIMS["umls", m] for m in paper.MODELS}
    table2_kd = _copy("kdkge.equal_budget", "TABLE2_KD")
    assert table2_kd == {k: v for k, v in paper.TABLE2_DIMS.items() if k[1] in paper.KD_MODELS}
    kinds = _copy("kdkge.losses.base", "CALIBRATIONS")  # the kinds, not the (kind, α) settings
    assert set(kinds) == {kind for kind, _ in paper.CALIBRATIONS}
