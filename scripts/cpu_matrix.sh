#!/usr/bin/env bash
# The exactness tests under other CPU kernels and thread counts (a cheap stand-in for other CPUs):
# ATEN_CPU_CAPABILITY=default|avx2|<native> × KDKGE_TEST_THREADS=1|2.  Usage:
#   bash scripts/cpu_matrix.sh [pytest args]      (default: the stacked / resume / fused tests)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
TESTS=("$@")
if [ ${#TESTS[@]} -eq 0 ]; then
    TESTS=(tests/test_fast_paths.py tests/test_training.py tests/test_negative_sampling.py tests/test_losses.py
           "tests/test_sweeps.py::test_stacked_sweep_equals_separate_runs" tests/test_faults.py)
fi
native=$($PY -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); torch native capability: $native"
status=0
for cap in default avx2 "$native"; do
    for threads in 1 2; do
        out=$(ATEN_CPU_CAPABILITY=$cap KDKGE_TEST_THREADS=$threads $PY -m pytest -q -p no:cacheprovider "${TESTS[@]}" 2>&1)
        line=$(tail -n 1 <<<"$out")
        echo "ATEN_CPU_CAPABILITY=$cap threads=$threads: $line"
        grep -E "^(FAILED|ERROR) " <<<"$out" | sed "s/^/    /"
        case "$line" in *failed*|*error*) status=1 ;; esac
    done
done
exit $status
