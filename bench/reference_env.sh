#!/usr/bin/env bash
# Create (idempotently) the virtual environment for the reference MrVI used by
# bench/reference_runner.py: scvi-tools 1.4.2 (JAX and torch backends) or a
# newer release (1.5.x: torch only).
#
# Usage: bash bench/reference_env.sh [VENV_DIR [SCVI_VERSION]]
#        (defaults: bench/.reference-venv and 1.4.2, i.e. .reference-venv next
#        to this script, wherever it is run from; for another version the
#        default folder is bench/.reference-venv-SCVI_VERSION)
#
# Notes
# -----
# * scvi-tools 1.4.2 is the newest release that still ships the JAX MrVI and
#   supports Python 3.11; its venv must therefore be Python 3.11.
# * scvi-tools 1.5 needs Python >= 3.12 and ships the torch MrVI only. Its venv
#   is Python 3.12 with the torch that the package registry resolves, a CUDA
#   build (about 6 GB with its libraries) that runs on the CPU as well; no
#   local CPU wheel exists for Python 3.12.
# * torch is installed FIRST and pinned to 2.13.0: the only CPU wheel
#   (torch-2.13.0+cpu, cp311) lies on local disk (pip's find-links). Any other
#   torch that pip could resolve is a CUDA build, so the pin is kept as a
#   constraint while scvi-tools and its dependencies are installed.
# * Re-running the script is cheap: an existing venv of the right Python is
#   reused and pip only reports "Requirement already satisfied".
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCVI_VERSION="${2:-1.4.2}"
if [[ "$SCVI_VERSION" == "1.4.2" ]]; then
    VENV_DIR="${1:-$SCRIPT_DIR/.reference-venv}"
else
    VENV_DIR="${1:-$SCRIPT_DIR/.reference-venv-$SCVI_VERSION}"
fi
TORCH_VERSION="2.13.0"

log() { printf '[reference_env] %s\n' "$*" >&2; }

if [[ "$SCVI_VERSION" != 1.4.* && "$SCVI_VERSION" != 1.[0-3].* ]]; then
    PY="${REFERENCE_PYTHON:-python3.12}"
    if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 12) else 1)'; then
        log "error: scvi-tools $SCVI_VERSION needs Python >= 3.12 (set REFERENCE_PYTHON)"
        exit 1
    fi
    if [[ ! -x "$VENV_DIR/bin/python" ]]; then
        log "creating venv at $VENV_DIR with $PY ($("$PY" --version 2>&1))"
        "$PY" -m venv "$VENV_DIR"
    fi
    log "installing scvi-tools==$SCVI_VERSION psutil (torch as the registry resolves it)"
    "$VENV_DIR/bin/python" -m pip install --quiet --upgrade pip
    "$VENV_DIR/bin/python" -m pip install --quiet "scvi-tools==$SCVI_VERSION" psutil
    "$VENV_DIR/bin/python" -c 'import scvi, torch, sys
print("python", sys.version.split()[0], "scvi-tools", scvi.__version__, "torch", torch.__version__)'
    exit 0
fi

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
