"""The real ``conf/`` tree: every combination composes and builds, typos and bad values fail early."""

from __future__ import annotations

import functools
import itertools
import re
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from kdkge.config import ConfigError, dataset_location, validate
from kdkge.identity import config_hash, default_run_name, semantic_config
from kdkge.config import CONF_DIR
from kdkge.data import load_dataset
from kdkge.losses import build_loss
from kdkge.models import build_model


ROOT = CONF_DIR.parent
MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml"))
DATASETS = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
CALIBRATIONS = sorted(p.stem for p in (CONF_DIR / "calibration").glob("*.yaml"))




def cfg_of(*overrides: str):
    return compose("train", overrides=list(overrides))


@functools.cache
def kg_of(location: str):
    return load_dataset(location)


def test_groups_and_options_exist():
    assert MODELS == ["complex", "distmult", "kd_complex", "kd_distmult", "kd_rel_complex", "kd_rel_distmult", "scaled_distmult"]
    assert DATASETS == ["custom", "kinship", "nations", "umls"]
    assert CALIBRATIONS == ["lr", "lr_0.1", "lr_0.2", "ls", "ls_0.1", "ls_0.2", "none"]
    assert sorted(p.stem for p in (CONF_DIR / "strategy").glob("*.yaml")) == ["1vsall", "kvsall", "negsamp"]
    assert sorted(p.stem for p in (CONF_DIR / "loss").glob("*.yaml")) == ["bce", "default", "softmax_ce"]
    assert sorted(p.stem for p in (CONF_DIR / "protocol").glob("*.yaml")) == ["paper_code", "paper_text"]
    assert sorted(p.stem for p in (CONF_DIR / "tracking").glob("*.yaml")) == ["mlflow", "none"]


def test_defaults_are_the_papers(hydra_conf):
    cfg = cfg_of()
    assert cfg.model.name == "distmult" and cfg.dim == 289
    assert cfg.dataset.name == "umls" and cfg.strategy.name == "1vsall"
    assert cfg.calibration.name == "none" and cfg.calibration.alpha is None
    assert (cfg.lr, cfg.batch_size, cfg.seed, cfg.epochs, cfg.noise_ratio) == (0.01, 1024, 1, 1000, 0.0)
    assert cfg.tracking.enabled and cfg.tracking.uri is None
    # Table 2's embedding sizes come with the model group
    assert cfg_of("model=kd_rel_distmult").dim == 289
    assert cfg_of("model=kd_distmult").dim == 256
    assert cfg_of("model=kd_distmult", "dim=400").dim == 400


@pytest.mark.parametrize("model,dataset", list(itertools.product(MODELS, DATASETS)))
def test_every_combination_composes_and_builds(hydra_conf, model, dataset):
    extra = [f"dataset.path={ROOT / 'data' / 'nations'}"] if dataset == "custom" else []
    for calibration in CALIBRATIONS:
        cfg = cfg_of(f"model={model}", f"dataset={dataset}", f"calibration={calibration}", *extra)
        spec, stored = validate(cfg)
        assert spec.model == model and spec.calibration == calibration.split("_")[0]
        if "_" in calibration:
            assert spec.alpha == float(calibration.split("_")[1])
        build_loss(spec.calibration, spec.alpha)
        kg = kg_of(dataset_location(cfg))
        net = build_model(spec.model, kg.num_entities, kg.num_relations, spec.dim, **spec.model_options)
        assert net.stored_width == stored
        assert net.num_parameters > 0
        assert default_run_name(cfg).startswith(f"{model}-")


@pytest.mark.parametrize(
    "override",
    ["epoch=5", "modle=distmult", "model.option.explicit=true", "model.options.explict=true",
     "dataset.paht=/tmp", "calibration.alfa=0.1", "tracking.url=http://x"],
)
def test_typo_in_override_fails(hydra_conf, override):
    with pytest.raises(ConfigCompositionException):
        cfg_of("model=kd_distmult", override)


@pytest.mark.parametrize("override", ["epochs=abc", "lr=fast", "seed=1.5", "checkpoint=maybe", "threads=x"])
def test_wrong_type_fails_at_compose(hydra_conf, override):
    with pytest.raises(ConfigCompositionException):
        cfg_of(override)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=kd_distmult", "dim=288"], "d=288 is not a perfect square"),
        (["model=kd_rel_distmult", "dim=290"], "nearest squares are 289 = 17² and 324 = 18²"),
        (["dim=range"], "dim=range is a sweep: add -m"),
        (["dim=0"], "dim=0 must be a positive integer"),
        (["calibration=ls", "calibration.alpha=1.5"], "alpha in the open interval (0, 1)"),
        (["calibration=lr", "calibration.alpha=0"], "alpha in the open interval (0, 1)"),
        (["calibration=lr", "calibration.alpha=null"], "alpha in the open interval (0, 1)"),
        (["calibration.alpha=0.1"], "no effect with calibration=none"),
        (["epochs=-1"], "epochs=-1 must be a non-negative integer"),
        (["batch_size=0"], "batch_size=0 must be a positive integer"),
        (["lr=0"], "lr=0.0 must be positive"),
        (["noise_ratio=1.0"], "noise_ratio=1.0 must lie in [0, 1)"),
        (["seed=-3"], "seed=-3 must be a non-negative integer"),
        (["strategy.name=2vsall"], "strategy.name='2vsall' is unknown"),
        (["strategy=negsamp"], "protocol=paper_code trains 1vsAll only (the authors' training_1vsall), not strategy=negsamp"),
        (["strategy=kvsall"], "protocol=paper_code trains 1vsAll only (the authors' training_1vsall), not strategy=kvsall"),
        (["protocol.name=paper_2021"], "protocol.name='paper_2021' is unknown: use protocol=paper_code or protocol=paper_text"),
        (["loss.name=mse"], "loss='mse' is unknown: use one of bce, softmax_ce"),
        (["protocol=paper_text", "strategy=kvsall", "loss=softmax_ce"], "loss=softmax_ce needs one true tail per data point"),
        (["dataset=custom"], "dataset=custom needs dataset.path="),
        (["dataset=custom", "dataset.path=/no/such/folder"], "dataset folder /no/such/folder does not exist"),
        (["dataset.unseen=drop"], "dataset.unseen='drop' is not a policy"),
        (["+model.options.explicit=true"], "model distmult has no option model.options.explicit"),
        (["device=tpu"], "device='tpu' is not one of"),
        (["threads=0"], "threads=0 must be a positive integer"),
        (["eval_every=-5"], "eval_every=-5 must be >= 0"),
    ],
)
def test_bad_values_fail_before_training_with_one_line(hydra_conf, overrides, message):
    with pytest.raises(ValueError) as info:
        validate(cfg_of(*overrides))
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_paper_code_needs_a_valid_split(hydra_conf, tmp_path):
    folder = tmp_path / "kg"
    folder.mkdir()
    (folder / "train.txt").write_text("a\tr\tb\nb\tr\tc\n")
    (folder / "valid.txt").write_text("\n")
    (folder / "test.txt").write_text("a\tr\tc\n")
    with pytest.raises(ValueError, match=r"protocol=paper_code needs a valid split \(.*valid.txt is empty\)"):
        validate(cfg_of("dataset=custom", f"dataset.path={folder}"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_fails(hydra_conf):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        validate(cfg_of("device=cuda"))


def test_custom_dataset_with_missing_split_fails(hydra_conf, tmp_path):
    (tmp_path / "train.txt").write_text("a\tr\tb\n")
    with pytest.raises(ValueError, match="valid.txt"):
        validate(cfg_of("dataset=custom", f"dataset.path={tmp_path}"))


def test_custom_dataset_name_is_the_folder(hydra_conf):
    cfg = cfg_of("dataset=custom", f"dataset.path={ROOT / 'data' / 'kinship'}")
    assert semantic_config(cfg)["dataset"]["name"] == "kinship"
    assert default_run_name(cfg) == "distmult-kinship-d289"


# --------------------------------------------------------------------------- #
# config hash
# --------------------------------------------------------------------------- #


def test_config_hash_ignores_non_semantic_keys(hydra_conf):
    base = config_hash(cfg_of())
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    for same in (["device=cpu"], ["threads=1"], ["progress=false"], ["force=true"], ["checkpoint=false"],
                 ["eval_every=7"], ["tracking=none"], ["tracking.uri=sqlite:///x.db"], ["tracking.experiment=e"],
                 ["lr=1e-2"], [f"dataset.path={ROOT / 'data' / 'umls'}"]):
        assert config_hash(cfg_of(*same)) == base, same
    for different in (["seed=2"], ["dim=256"], ["lr=0.02"], ["epochs=999"], ["batch_size=512"], ["noise_ratio=0.1"],
                      ["strategy=kvsall"], ["calibration=ls"], ["dataset=kinship"], ["model=kd_rel_distmult"],
                      ["dataset.unseen=error"]):
        assert config_hash(cfg_of(*different)) != base, different


def test_calibration_sweep_options_hash_like_explicit_alpha(hydra_conf):
    for name in ("ls", "lr"):
        for alpha in ("0.1", "0.2"):
            assert config_hash(cfg_of(f"calibration={name}_{alpha}")) == config_hash(
                cfg_of(f"calibration={name}", f"calibration.alpha={alpha}")
            )
    assert config_hash(cfg_of("calibration=ls_0.1")) != config_hash(cfg_of("calibration=lr_0.1"))
    assert config_hash(cfg_of("model=kd_distmult", "model.options.explicit=true")) != config_hash(cfg_of("model=kd_distmult"))


# --------------------------------------------------------------------------- #
# YAML documentation and --help
# --------------------------------------------------------------------------- #

KEY_LINE = re.compile(r"^\s*(?:- )?([A-Za-z_][\w.]*)\s*:\s*(\S.*)?$")


@pytest.mark.parametrize(
    "path", sorted(p for p in CONF_DIR.rglob("*.yaml") if "hydra" not in p.relative_to(CONF_DIR).parts),
    ids=lambda p: str(p.relative_to(CONF_DIR)),
)
def test_every_key_is_documented(path):
    """Every line that sets a value carries a ``#`` comment (parents of nested blocks are exempt)."""
    lines = path.read_text().splitlines()
    assert lines[0].startswith("#"), f"{path.name} starts without a description comment"
    undocumented = []
    for line in lines:
        match = KEY_LINE.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        value = (match.group(2) or "").strip()
        if value and not value.startswith("#") and "#" not in value:
            undocumented.append(line)
    assert not undocumented, f"{path.name}: keys without a comment: {undocumented}"


def test_help_lists_groups_options_and_examples():
    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "model: complex, distmult, kd_complex, kd_distmult, kd_rel_complex, kd_rel_distmult, scaled_distmult" in text
    assert "dataset: custom, kinship, nations, umls" in text
    assert "strategy: 1vsall, kvsall, negsamp" in text
    assert "loss: bce, default, softmax_ce" in text and "protocol: paper_code, paper_text" in text
    assert "calibration: lr, lr_0.1, lr_0.2, ls, ls_0.1, ls_0.2, none" in text
    assert "tracking: mlflow, none" in text
    assert "python train.py model=kd_distmult" in text
    assert "dim: 289" in text and "epochs: 1000" in text
