#!/usr/bin/env bash
# A real single-node SLURM on this machine, for the tests and CI: munge + slurmctld + slurmd, with
# fake GPUs, everything (config, state, spool, logs, PID files, munge socket) in one folder.
#
#   slurm/local-cluster.sh start    install munge/slurm if missing, start the daemons, wait for an idle node
#   slurm/local-cluster.sh status   exit 0 if all three daemons of this folder are alive
#   slurm/local-cluster.sh stop     cancel this cluster's jobs, stop the daemons this script started
#
# `start` and `status` print `SLURM_CONF=<folder>/etc/slurm.conf` as their last line: export it
# (`export "$(slurm/local-cluster.sh start | tail -n 1)"`) so that sbatch, squeue, ... talk to this cluster.
# Needs root (daemons, mknod, apt-get). Stopping touches only the PIDs in the folder's PID files.
#
# Settings (environment):
#   DIP_SLURM_DIR    the folder (default /tmp/dip-slurm); keep it short, a Unix socket lives in it
#   DIP_SLURM_GPUS   fake GPUs on the node (default 2): character devices <folder>/dev/nvidia<i>
#   DIP_SLURM_PORTS  slurmctld port; slurmd takes the next one (default 6817)
set -euo pipefail

DIR="${DIP_SLURM_DIR:-/tmp/dip-slurm}"
GPUS="${DIP_SLURM_GPUS:-2}"
CTLD_PORT="${DIP_SLURM_PORTS:-6817}"
SLURMD_PORT=$((CTLD_PORT + 1))
CONF="$DIR/etc/slurm.conf"
RUN="$DIR/run"
HOST="$(hostname -s)"

say() { echo "local-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }

# A PID is ours and alive when /proc shows it running (not a zombie) with the expected command name.
alive() {
    local pidfile="$1" name="$2" pid state comm
    [[ -s "$pidfile" ]] || return 1
    pid="$(<"$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/stat" ]] || return 1
    comm="$(<"/proc/$pid/comm")" || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ "$comm" == "$name" && "$state" != "Z" && "$state" != "X" ]]
}

running() {
    alive "$RUN/munged.pid" munged && alive "$RUN/slurmctld.pid" slurmctld && alive "$RUN/slurmd.pid" slurmd
}

install_packages() {
    command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && return 0
    [[ "$(id -u)" == 0 ]] || die "munge/slurm are not installed and installing them needs root: run as root, or install munge slurmctld slurmd slurm-client"
    command -v apt-get >/dev/null || die "munge/slurm are not installed and there is no apt-get: install munge, slurmctld, slurmd and slurm-client with your package manager"
    say "installing munge and slurm (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client >"$DIR/log/apt.log" 2>&1 \
        || { apt-get update >>"$DIR/log/apt.log" 2>&1 \
             && apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client >>"$DIR/log/apt.log" 2>&1; } \
        || die "apt-get could not install munge/slurm; see $DIR/log/apt.log"
}

write_config() {
    local hardware memory cpus
    hardware="$(slurmd -C | head -n 1)"  # NodeName=HOST CPUs=... Boards=... RealMemory=...
    cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hardware")"
    memory="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hardware")"
    [[ -n "$cpus" && -n "$memory" ]] || die "cannot read CPUs and memory from 'slurmd -C': $hardware"
    rm -f "$DIR"/dev/nvidia*
    local files=""
    if ((GPUS > 0)); then
        for ((i = 0; i < GPUS; i++)); do mknod "$DIR/dev/nvidia$i" c 195 "$i"; done
        files="$DIR/dev/nvidia[0-$((GPUS - 1))]"
        echo "Name=gpu File=$files" >"$DIR/etc/gres.conf"
    else
        : >"$DIR/etc/gres.conf"
    fi
    cat >"$CONF" <<EOF
# Written by slurm/local-cluster.sh: a one-node cluster for tests, no cgroups, no accounting.
ClusterName=diplocal
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((memory / cpus / 2))
GresTypes=gpu
ReturnToService=2
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
KillWait=10
MinJobAge=600
InactiveLimit=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory$( ((GPUS > 0)) && echo " Gres=gpu:$GPUS") State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    alive "$RUN/munged.pid" munged && return 0
    install -d -o munge -g munge -m 0700 "$DIR/munge"
    if [[ ! -s "$DIR/munge/munge.key" ]]; then
        mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1 \
            || dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    fi
    chown munge:munge "$DIR/munge/munge.key" && chmod 0600 "$DIR/munge/munge.key"
    touch "$RUN/munged.pid" && chown munge:munge "$RUN/munged.pid"
    runuser -u munge -- munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$RUN/munged.pid" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" \
        || die "munged did not start; see $DIR/munge/munged.log"
}

wait_idle() {
    local deadline=$((SECONDS + 60)) state=""
    while ((SECONDS < deadline)); do
        state="$(SLURM_CONF="$CONF" sinfo -h -N -o %T 2>/dev/null | head -n 1)" || true
        [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]] && return 0
        sleep 0.3
    done
    die "the node did not come up (state '${state:-none}'); see $DIR/log/slurmctld.log and $DIR/log/slurmd.log"
}

start() {
    mkdir -p "$DIR"/{etc,dev,state,spool,log,run}
    chmod 0755 "$DIR"
    if running; then
        say "already running in $DIR"
        echo "SLURM_CONF=$CONF"
        return 0
    fi
    local began=$SECONDS
    install_packages
    [[ "$(id -u)" == 0 ]] || die "starting the SLURM daemons needs root"
    alive "$RUN/slurmd.pid" slurmd || alive "$RUN/slurmctld.pid" slurmctld || write_config
    start_munge
    export SLURM_CONF="$CONF"
    alive "$RUN/slurmctld.pid" slurmctld || slurmctld -c -i || die "slurmctld did not start; see $DIR/log/slurmctld.log"
    alive "$RUN/slurmd.pid" slurmd || slurmd -c || die "slurmd did not start; see $DIR/log/slurmd.log"
    wait_idle
    say "node $HOST idle with $GPUS fake GPUs after $((SECONDS - began)) s; config, logs and state in $DIR"
    echo "SLURM_CONF=$CONF"
}

stop_pid() {
    local pidfile="$1" name="$2" pid
    alive "$pidfile" "$name" || { rm -f "$pidfile"; return 0; }
    pid="$(<"$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pidfile" "$name" || break; sleep 0.1; done
    alive "$pidfile" "$name" && { kill -KILL "$pid" 2>/dev/null || true; }
    rm -f "$pidfile"
}

stop() {
    if alive "$RUN/slurmctld.pid" slurmctld; then
        # Jobs of this cluster only (its own slurmctld answers): cancel them, give them KillWait to end.
        local jobs
        jobs="$(SLURM_CONF="$CONF" squeue -h -o %i 2>/dev/null || true)"
        if [[ -n "$jobs" ]]; then
            # shellcheck disable=SC2086
            SLURM_CONF="$CONF" scancel $jobs 2>/dev/null || true
            for _ in $(seq 150); do
                [[ -z "$(SLURM_CONF="$CONF" squeue -h -o %i 2>/dev/null || true)" ]] && break
                sleep 0.1
            done
        fi
    fi
    stop_pid "$RUN/slurmd.pid" slurmd
    stop_pid "$RUN/slurmctld.pid" slurmctld
    stop_pid "$RUN/munged.pid" munged
    say "stopped the daemons of $DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        running || { say "not running in $DIR"; exit 1; }
        echo "SLURM_CONF=$CONF"
        ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
