#!/usr/bin/env bash
# Start a single-node SLURM cluster for CI: munged, slurmctld and slurmd as plain background
# daemons (no systemd), with their config, state, spool, log, pid and socket files under DIR (and
# a link /etc/slurm/slurm.conf -> DIR/slurm.conf, see step 5).
#
#   .ci/slurm/up.sh DIR            # DIR: a new or empty folder (e.g. from mktemp -d); needs root
#   export SLURM_CONF=DIR/slurm.conf   # then sinfo, sbatch, snakemake --executor slurm use it
#   .ci/slurm/down.sh DIR          # stops exactly the daemons started here (PIDs in DIR/daemons)
#
# Installs slurm-wlm and munge from the distribution (apt) when they are missing. Each step says
# which pitfall it avoids; README.md, section "SLURM", says how CI uses the cluster.
set -Eeuo pipefail

DIR=${1:?usage: up.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
t0=$EPOCHREALTIME
elapsed() { awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
log() { echo "[slurm-up $(elapsed) s] $*"; }

[ "$(id -u)" -eq 0 ] || { echo "up.sh: needs root (apt-get, slurmd)" >&2; exit 1; }
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
[ -e "$DIR/daemons" ] && { echo "up.sh: $DIR already holds a cluster (down.sh it first)" >&2; exit 1; }
# on any failure from here on: show the daemons' logs, then stop what was started
on_error() {
  trap - ERR
  echo "up.sh: failed; stopping what was started" >&2
  tail -n 20 "$DIR"/log/*.log "$DIR"/munge/*.log >&2 2>/dev/null || true
  "$HERE/down.sh" "$DIR" || true
}
trap on_error ERR

# 1. packages (skipped when present)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge (apt)"
  # the packages' postinst must not start services (no systemd here): policy-rc.d 101
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_status=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge \
    >/dev/null; } || apt_status=$?
  [ "$made_policy" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
  [ "$apt_status" -eq 0 ] || { echo "up.sh: apt-get failed ($apt_status)" >&2; false; }
  log "packages installed: $(dpkg-query -W -f '${Version}' slurmctld) (slurm), $(dpkg-query -W -f '${Version}' munge) (munge)"
else
  log "slurm-wlm and munge already installed"
fi

# 2. the node's name must resolve (NodeName = hostname -s)
HOST=$(hostname -s)
if ! getent hosts "$HOST" >/dev/null; then
  echo "127.0.0.1 $HOST" >> /etc/hosts
  log "added $HOST to /etc/hosts"
fi

# 3. folders and a fresh munge key; munged runs as the munge user and refuses files others can
#    read or write
mkdir -p "$DIR"/{state,spool,log,run,munge}
chmod 755 "$DIR"
chown munge:munge "$DIR/munge"
chmod 755 "$DIR/munge"  # munged: the socket folder must be searchable by all
dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chown munge:munge "$DIR/munge/munge.key"
chmod 600 "$DIR/munge/munge.key"

# 4. free TCP ports for slurmctld and slurmd (another cluster may hold the defaults 6817/6818)
ports=$(python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))' 2>/dev/null || echo "6817 6818")
read -r CTLD_PORT SLURMD_PORT <<<"$ports"

# 5. slurm.conf: the node's geometry from slurmd -C, RealMemory at 85 % of what it detects
#    (above what slurmd detects, the node would be INVAL)
geometry=$(slurmd -C | head -n 1)
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$geometry")
real_memory=$((mem * 85 / 100))
node="$(sed "s/RealMemory=[0-9]*/RealMemory=$real_memory/" <<<"$geometry") NodeAddr=127.0.0.1 State=UNKNOWN"
sed -e "s|@DIR@|$DIR|g" -e "s|@HOST@|$HOST|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
  -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@NODE@|$node|g" \
  "$HERE/slurm.conf.in" > "$DIR/slurm.conf"
export SLURM_CONF=$DIR/slurm.conf
# ... and at SLURM's default path: the executor plugin's job step strips SLURM_* (SLURM_CONF too)
# from the environment of the `srun` it runs inside each job, so srun finds only
# /etc/slurm/slurm.conf. A link, made only where no config is, removed by down.sh.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
  echo "up.sh: $DEFAULT_CONF exists (another cluster's config?); the CI cluster needs that path" >&2
  false
fi
mkdir -p "$(dirname "$DEFAULT_CONF")"
ln -s "$SLURM_CONF" "$DEFAULT_CONF"
echo "$DEFAULT_CONF" > "$DIR/conf-link"

# 6. the daemons; each writes its PID file, recorded with the command name down.sh checks
: > "$DIR/daemons"
wait_pid_file() { # file: wait up to 10 s for a PID file holding a live process
  for _ in $(seq 100); do
    if [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "up.sh: no live PID in $1" >&2
  return 1
}
start() { # name pid_file command...
  local name=$1 pid_file=$2
  shift 2
  "$@"
  wait_pid_file "$pid_file"
  echo "$name $(cat "$pid_file")" >> "$DIR/daemons"
  log "$name started, PID $(cat "$pid_file")"
}
start munged "$DIR/munge/munged.pid" runuser -u munge -- /usr/sbin/munged \
  --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
  --seed-file="$DIR/munge/munged.seed"
start slurmctld "$DIR/run/slurmctld.pid" slurmctld -f "$SLURM_CONF"
start slurmd "$DIR/run/slurmd.pid" slurmd -f "$SLURM_CONF"

# 7. wait for the node to take jobs
for _ in $(seq 120); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
if [ "$state" != idle ]; then
  echo "up.sh: node state '${state:-none}' after 60 s" >&2
  false
fi
log "cluster up: $(sinfo -h -N -o '%N %T cpus=%c mem=%mMB partition=%P')"
log "export SLURM_CONF=$SLURM_CONF"
