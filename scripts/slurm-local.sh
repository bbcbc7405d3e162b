#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (slurmctld, slurmd and munge
# from Debian: apt-get install slurm-wlm munge), for trying `flashnas launch
# slurm --submit` for real. Its configuration and state live in DIR; the
# node is this host with its cores and memory. Needs root (slurmd runs jobs
# as their users).
#   scripts/slurm-local.sh start DIR   prints the SLURM_CONF to export
#   scripts/slurm-local.sh stop DIR
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (slurmd starts jobs as their users)" >&2; exit 2; }
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
  { echo "$0: install slurm-wlm and munge first (apt-get install slurm-wlm munge)" >&2; exit 2; }
conf="$dir/slurm.conf"
case "$cmd" in
  start)
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
    cat > "$conf" <<CONF
ClusterName=flashnas-local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    mkdir -p /run/munge && chown munge:munge /run/munge
    pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
    SLURM_CONF=$conf slurmctld -f "$conf"
    SLURM_CONF=$conf slurmd -f "$conf"
    for _ in $(seq 60); do
      SLURM_CONF=$conf sinfo -h -o %T 2>/dev/null | grep -q idle && { echo "SLURM_CONF=$conf"; exit 0; }
      sleep 1
    done
    echo "$0: the node did not become idle; see $dir/log" >&2; exit 1 ;;
  stop)
    pids=""
    for p in slurmd slurmctld; do [ -f "$dir/$p.pid" ] && pids="$pids $(cat "$dir/$p.pid")"; done
    for pid in $pids; do kill "$pid" 2>/dev/null || true; done
    # slurmctld saves its state into $dir as it shuts down: wait for both to
    # exit before removing the folder (a removal racing that write fails).
    for pid in $pids; do
      for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    rm -rf "$dir" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
