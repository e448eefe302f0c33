"""The GPU bench (issue 17) runs end to end on the CPU on a tiny subset, so it is ready before a GPU is lent."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kdkge import bench_gpu

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_bench_runs_on_cpu_on_a_tiny_subset(tmp_path):
    out = tmp_path / "benchmarks_gpu.md"
    bench_gpu.main(["--device", "cpu", "--subset", "tiny", "--seeds", "2", "--epochs", "2", "--workers", "1", "--out", str(out)])
    text = out.read_text()
    assert "| umls | distmult | 289 | 10 |" in text  # 5 calibrations × 2 seeds stacked
    assert "one protocol: **" in text and "both protocols (paper_code and paper_text): **" in text


def test_gpu_stack_equals_the_table23_grid():
    stacks = bench_gpu.table23_stacks(seeds=5, epochs=1000)
    assert len(stacks) == 6 and all(len(s) == 25 for s in stacks)
    assert len({s.stack_key() for s in stacks[0]}) == 1  # one stackable job each


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_one_line_error():
    out = subprocess.run([sys.executable, "-m", "kdkge.bench", "--device", "cuda"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no CUDA GPU is available here" in out.stderr and "Traceback" not in out.stderr
