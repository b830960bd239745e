#!/usr/bin/env bash
# The GPU checks in one go, for a machine with an NVIDIA GPU, CuPy and (optionally) PyTorch CUDA:
#   1. the CuPy variants of the test suite and tests/test_gpu.py (they skip on a machine without a GPU);
#   2. benchmarks/run.py --device cuda: cases (a) and (b), ours on CuPy against PyTorch on the same card.
# Logs go to $OUT (default gpu_check_out/). Run from the repository root:  bash benchmarks/gpu_check.sh
set -o pipefail
OUT=${OUT:-gpu_check_out}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
"$PYTHON" -c "import cupy, numpy; print('CuPy', cupy.__version__, 'NumPy', numpy.__version__)" 2>&1 | tee -a "$OUT/gpu.txt"
start=$(date +%s)
timeout "${TEST_TIMEOUT:-240}" "$PYTHON" -m pytest -q -rs -p no:cacheprovider -k "cupy or gpu" tests/ 2>&1 | tee "$OUT/tests.log"
tests_rc=$?
echo "tests: exit $tests_rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/tests.log"
start=$(date +%s)
timeout "${BENCH_TIMEOUT:-240}" "$PYTHON" benchmarks/run.py --device cuda --only a b --repeats "${REPEATS:-10}" 2>&1 | tee "$OUT/bench.log"
bench_rc=$?
echo "benchmark: exit $bench_rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/bench.log"
exit $(( tests_rc || bench_rc ))
