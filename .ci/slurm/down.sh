#!/usr/bin/env bash
# Stop the CI cluster that .ci/slurm/up.sh started in DIR: cancel its jobs, then stop exactly the
# daemons listed in DIR/daemons (PID and command name, both checked), never by name; remove the
# link /etc/slurm/slurm.conf -> DIR/slurm.conf if up.sh made it. Removes DIR unless
# KEEP_SLURM_DIR=1.
#
#   .ci/slurm/down.sh DIR
set -uo pipefail

DIR=${1:?usage: down.sh DIR}
[ -d "$DIR" ] || exit 0
export SLURM_CONF=$DIR/slurm.conf

alive() { # pid name: the process exists and is still that daemon
  [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

if [ -f "$DIR/daemons" ]; then
  # jobs first, so that no job step outlives the cluster
  ctld=$(awk '$1 == "slurmctld" {print $2}' "$DIR/daemons")
  if [ -n "$ctld" ] && alive "$ctld" slurmctld && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    scancel --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 40); do
      [ -z "$(squeue -h -t RUNNING,PENDING,COMPLETING,CONFIGURING -o %i 2>/dev/null)" ] && break
      sleep 0.25
    done
  fi
  # then the daemons, in reverse order of start
  tac "$DIR/daemons" | while read -r name pid; do
    if ! alive "$pid" "$name"; then
      echo "down.sh: $name (PID $pid) is not running"
      continue
    fi
    kill -TERM "$pid"
    for _ in $(seq 50); do alive "$pid" "$name" || break; sleep 0.1; done
    if alive "$pid" "$name"; then
      kill -KILL "$pid"
      echo "down.sh: $name (PID $pid) killed after 5 s"
    else
      echo "down.sh: $name (PID $pid) stopped"
    fi
  done
fi

# the link to this cluster's slurm.conf at SLURM's default path, if it is still ours
if [ -f "$DIR/conf-link" ]; then
  link=$(cat "$DIR/conf-link")
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$SLURM_CONF" ]; then
    rm -f "$link"
  fi
fi

if [ "${KEEP_SLURM_DIR:-0}" = 1 ]; then
  echo "down.sh: kept $DIR"
else
  rm -rf "$DIR"
fi
