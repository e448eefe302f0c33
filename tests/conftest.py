"""Shared fixtures and settings of the test suite.

Threads: every test process uses ``KDKGE_TEST_THREADS`` torch threads (default 1), so the suite can
be run with 1 and with 2 threads (``KDKGE_TEST_THREADS=2 make test``): the exactness tests must
hold with both.  Together with ``ATEN_CPU_CAPABILITY=default|avx2|avx512`` this stands in for other
CPUs (README, "Reproducibility").
"""

import os

import pytest
import torch
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from kdkge.config import CONF_DIR

torch.set_num_threads(int(os.environ.get("KDKGE_TEST_THREADS", "1")))


@pytest.fixture
def hydra_conf():
    """Hydra initialised on ``conf/`` for ``hydra.compose`` (a fresh global Hydra per test)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()
