#!/usr/bin/env bash
# A single-node Slurm cluster for testing the job-array recipe of docs/studies.md
# (tests/cluster.rs starts and stops it). Needs root, and Debian's slurm-wlm and munge.
#
#   tools/slurm-single-node.sh start DIR   # writes DIR/slurm.conf, starts munged, slurmctld,
#                                          # slurmd; waits until the node is idle
#   tools/slurm-single-node.sh stop DIR    # stops the daemons started from DIR
#
# Then: SLURM_CONF=DIR/slurm.conf sbatch ...
set -euo pipefail
cmd=${1:?usage: slurm-single-node.sh start|stop DIR}
D=$(realpath -m "${2:?usage: slurm-single-node.sh start|stop DIR}")
export SLURM_CONF="$D/slurm.conf"

stop() {
    for p in slurmd slurmctld; do
        if [ -f "$D/$p.pid" ]; then
            kill "$(cat "$D/$p.pid")" 2>/dev/null || true
        fi
    done
    for _ in $(seq 50); do
        alive=0
        for p in slurmd slurmctld; do
            if [ -f "$D/$p.pid" ] && kill -0 "$(cat "$D/$p.pid")" 2>/dev/null; then alive=1; fi
        done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
    done
}

case "$cmd" in
stop)
    stop
    ;;
start)
    mkdir -p "$D"/state "$D"/spool "$D"/log
    H=$(hostname -s)
    cat > "$SLURM_CONF" <<CONF
ClusterName=kvtier-test
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$H CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    # munge: a key, and the daemon (once per machine).
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key 2>/dev/null || true
        chmod 400 /etc/munge/munge.key
    fi
    if ! munge -n >/dev/null 2>&1 || ! munge -n | unmunge >/dev/null 2>&1; then
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
        munged --force
        for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
    fi
    stop
    slurmctld
    slurmd
    for _ in $(seq 100); do
        if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
            echo "$SLURM_CONF"
            exit 0
        fi
        sleep 0.2
    done
    echo "slurm did not come up; logs in $D/log" >&2
    tail -5 "$D"/log/*.log >&2 || true
    exit 1
    ;;
*)
    echo "usage: slurm-single-node.sh start|stop DIR" >&2
    exit 2
    ;;
esac
