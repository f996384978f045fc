#!/usr/bin/env bash
# CI step: the workflow on a real SLURM cluster. Starts a single-node cluster (up.sh) in a fresh
# temporary folder, runs tests/workflow/test_slurm.py against it (a tiny config through
# `snakemake --profile profiles/local-slurm`, compared with a local run) and stops the cluster
# (down.sh, also on failure or interrupt). Needs root and the project's .venv (make setup).
#
#   .ci/slurm/run.sh        (or: make slurm-test)
#
# SLURM_TEST_TIMEOUT (seconds, default 900) bounds the SLURM run; the whole step is bounded by
# twice that. KEEP_SLURM_DIR=1 keeps the cluster's folder (logs) after the run.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTEST=${PYTEST:-.venv/bin/pytest}
TIMEOUT=${SLURM_TEST_TIMEOUT:-900}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/mrvi-slurm.XXXXXX")
trap '.ci/slurm/down.sh "$DIR"' EXIT

start=$EPOCHREALTIME
.ci/slurm/up.sh "$DIR"
export SLURM_CONF=$DIR/slurm.conf
up_s=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

start=$EPOCHREALTIME
status=0
# pytest's temporary folders inside the cluster's folder: other pytest sessions on the same
# machine prune the shared ones
MRVI_SLURM_REQUIRED=1 timeout -k 30 $((2 * TIMEOUT)) "$PYTEST" -p no:cacheprovider -m slurm -s -rs \
  --basetemp "$DIR/pytest" tests/workflow/test_slurm.py || status=$?
test_s=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "slurm-test: cluster up in $up_s s; test (local run + SLURM run + checks) $test_s s; exit $status"
if [ "$status" -ne 0 ]; then
  echo "--- slurmctld.log (tail)"; tail -n 30 "$DIR/log/slurmctld.log" || true
  echo "--- slurmd.log (tail)"; tail -n 30 "$DIR/log/slurmd.log" || true
fi
exit "$status"
