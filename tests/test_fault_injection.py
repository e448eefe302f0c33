"""The fault-injection script (kills a sweep at random moments, relaunches) passes its own checks.

The test runs a 4-configuration sweep (2 models × 2 sizes, 200 epochs each, about 13 s uninterrupted
here) with one kill (after 6.1 s with seed 1), which lands mid-sweep, so that the suite stays within CI's time; the
script's default is the 9-configuration sweep with five kills (run it by hand for more)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_fault_injection_script(tmp_path):
    out = subprocess.run(
        [sys.executable, "scripts/fault_injection.py", "--kills", "1", "--seed", "1", "--store", str(tmp_path),
         "--models", "distmult,kd_distmult", "--dims", "4,16", "--epochs", "200"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   one FINISHED run per configuration" in out.stdout
    assert "ok   no RUNNING run left" in out.stdout
    assert "FAIL" not in out.stdout
    assert out.stdout.count("killed after") >= 1, out.stdout  # at least one kill landed mid-sweep
    assert "configurations: 4;" in out.stdout
