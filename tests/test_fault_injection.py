"""The fault-injection script (kills a sweep at random moments, relaunches) passes its own checks."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_fault_injection_script(tmp_path):
    out = subprocess.run(
        [sys.executable, "scripts/fault_injection.py", "--kills", "2", "--seed", "1", "--store", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   one FINISHED run per configuration" in out.stdout
    assert "ok   no RUNNING run left" in out.stdout
    assert "FAIL" not in out.stdout
