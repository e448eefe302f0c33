"""The same config and seed give bit-identical metrics, before and after a refactoring (issue 15).

``golden_metrics.json`` holds every metric :func:`kdkge.app.train` returned for three tiny float64
runs (1vsAll, label smoothing on KD-DistMult, negative sampling on noisy data) and one stacked group
(:func:`kdkge.app.train_group`, two calibrations), recorded with the code before ``app.py`` was
split.  Any change of the training path that moves a single bit fails here.  Timings
(``wall_time_s``, ``epochs_per_s``) are left out.  The values depend on torch's CPU kernels: on
another torch version or CPU capability the test is skipped (record the file again there from a
commit known to be right).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose

import kdkge.app as app

GOLDEN = json.loads((Path(__file__).parent / "golden_metrics.json").read_text())
TIMINGS = ("wall_time_s", "epochs_per_s")


def _same_machine() -> None:
    recorded = GOLDEN["_recorded_with"]
    here = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if any(recorded[k] != v for k, v in here.items()):
        pytest.skip(f"golden metrics recorded with {recorded}, this machine has {here}")


def _metrics(result: dict) -> dict:
    return {k: v for k, v in sorted(result.items()) if k not in TIMINGS}


@pytest.mark.parametrize("case", ["distmult_1vsall", "kd_distmult_ls", "kd_rel_negsamp"])
def test_single_runs_are_bit_identical_to_the_recorded_metrics(hydra_conf, case):
    _same_machine()
    cfg = compose("train", overrides=[*GOLDEN["base_overrides"], *GOLDEN[case]["overrides"]])
    assert _metrics(app.train(cfg)) == GOLDEN[case]["metrics"]


def test_stacked_group_is_bit_identical_to_the_recorded_metrics(hydra_conf):
    _same_machine()
    cfgs = [compose("train", overrides=[*GOLDEN["base_overrides"], *o]) for o in GOLDEN["stacked"]["overrides"]]
    results = app.train_group(cfgs, overrides=["a", "b"])
    assert [_metrics(r) for r in results] == GOLDEN["stacked"]["metrics"]
