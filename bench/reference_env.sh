#!/usr/bin/env bash
# Create (idempotently) the virtual environment for the reference MrVI
# (scvi-tools 1.4.2, JAX and torch backends) used by bench/reference_runner.py.
#
# Usage: bash bench/reference_env.sh [VENV_DIR]   (default: bench/.reference-venv,
#        i.e. .reference-venv next to this script, wherever it is run from)
#
# Notes
# -----
# * scvi-tools 1.4.2 is the newest release that still ships the JAX MrVI and
#   supports Python 3.11; the venv must therefore be Python 3.11.
# * torch is installed FIRST and pinned to 2.13.0: the only CPU wheel
#   (torch-2.13.0+cpu, cp311) lies on local disk (pip's find-links). Any other
#   torch that pip could resolve is a CUDA build, so the pin is kept as a
#   constraint while scvi-tools and its dependencies are installed.
# * Re-running the script is cheap: an existing venv of the right Python is
#   reused and pip only reports "Requirement already satisfied".
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV_DIR="${1:-$SCRIPT_DIR/.reference-venv}"
TORCH_VERSION="2.13.0"
SCVI_VERSION="1.4.2"

log() { printf '[reference_env] %s\n' "$*" >&2; }

if command -v python3.11 >/dev/null 2>&1; then
    PY=python3.11
else
    PY=python3
fi

check_py311() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'
}

if ! check_py311 "$PY"; then
    log "error: $PY is $("$PY" --version 2>&1), Python 3.11 is required"
    exit 1
fi

start=$(date +%s)

if [[ -x "$VENV_DIR/bin/python" ]] && check_py311 "$VENV_DIR/bin/python"; then
    log "reusing existing venv at $VENV_DIR"
else
    if [[ -e "$VENV_DIR" ]]; then
        log "error: $VENV_DIR exists but is not a Python 3.11 venv; remove it first"
        exit 1
    fi
    log "creating venv at $VENV_DIR with $PY ($("$PY" --version 2>&1))"
    "$PY" -m venv "$VENV_DIR"
fi

VPY="$VENV_DIR/bin/python"
"$VPY" -m pip install --quiet --upgrade pip

# Constraint file that keeps pip from replacing the local CPU torch wheel.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
printf 'torch==%s\n' "$TORCH_VERSION" >"$constraints"

log "installing torch==$TORCH_VERSION (local CPU wheel)"
"$VPY" -m pip install "torch==$TORCH_VERSION"

if ! "$VPY" -c 'import torch, sys; sys.exit(0 if "+cpu" in torch.__version__ else 1)'; then
    log "error: installed torch is not a CPU build: $("$VPY" -c 'import torch; print(torch.__version__)')"
    exit 1
fi

log "installing scvi-tools[jax]==$SCVI_VERSION anndata scanpy psutil"
"$VPY" -m pip install -c "$constraints" \
    "scvi-tools[jax]==$SCVI_VERSION" anndata scanpy psutil

end=$(date +%s)
log "install took $((end - start)) s"

"$VPY" - <<'EOF'
import sys
from importlib.metadata import version

print(f"python      {sys.version.split()[0]}")
for name in ("scvi-tools", "torch", "jax", "jaxlib", "flax", "optax", "numpyro",
             "lightning", "anndata", "scanpy", "numpy", "scipy", "pandas", "psutil"):
    try:
        print(f"{name:<11} {version(name)}")
    except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
        print(f"{name:<11} (not installed)")
EOF
