#!/usr/bin/env bash
# The prepared GPU check (issue 22): install the `gpu` extra (JAX's CUDA 12 wheels) into the
# project's environment, then time training (bench/train_throughput.py) and the analyses
# (bench/posthoc.py) at 10,000 and 200,000 cells and the default workflow's fit_mrvi, and append
# the figures to bench/RESULTS.md (bench/gpu_check.py says what each step is). The steps share a
# 420 s budget (--budget-s), so the check ends within about 8 minutes with the install.
#
#   bash bench/gpu_check.sh                  # install the extra, run, append to bench/RESULTS.md
#   bash bench/gpu_check.sh --no-install     # JAX with CUDA is already there
#   PYTHON=/path/to/python bash bench/gpu_check.sh --no-install --results /tmp/gpu.md
#
# Any other options are passed on to bench/gpu_check.py (--sizes, --mc-samples, --budget-s,
# --results, --records, --skip-workflow).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [[ ! -x "$PY" ]] && ! command -v "$PY" >/dev/null; then
    echo "gpu_check: no Python at $PY; run 'make setup' first or set PYTHON" >&2
    exit 2
fi
export GPU_CHECK_COMMAND="bash bench/gpu_check.sh $*"
if [[ "${1:-}" == "--no-install" ]]; then
    shift
else
    "$PY" -m pip install --quiet -e '.[gpu]'
fi
# JAX takes GPU memory as it needs it (as the workflow's GPU jobs do; README.md, "GPU").
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
exec "$PY" bench/gpu_check.py "$@"
