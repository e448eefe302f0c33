"""pyproject.toml and environment.yml must pin the same versions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    """Map canonical package name -> normalised specifier string."""
    pins = {}
    for line in lines:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in pins, f"{name} listed twice"
        pins[name] = str(req.specifier)
    return pins


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _env_pip_lines(env: dict) -> list[str]:
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip section"
    return pip_sections[0]


def test_pins_agree():
    project = _pyproject()["project"]
    py = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = _pins(_env_pip_lines(_environment()))
    assert py == env


def test_key_pins():
    project = _pyproject()["project"]
    py = _pins(project["dependencies"])
    assert py["torch"] == "==2.13.0"  # the CPU wheel on disk; unpinned pulls CUDA
    assert py["mlflow"] == "==3.17.2"  # 3.18 is broken
    assert py["hydra-core"] == "==1.3.8"
    assert Requirement("omegaconf" + py["omegaconf"]).specifier.contains("2.3.1")
    assert not Requirement("omegaconf" + py["omegaconf"]).specifier.contains("2.4.0")
    for name, spec in py.items():
        assert spec, f"{name} is unpinned"


def test_python_version_agrees():
    assert _pyproject()["project"]["requires-python"] == ">=3.11"
    conda = [d for d in _environment()["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda
