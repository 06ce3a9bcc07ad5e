#!/usr/bin/env bash
# Bring up a real one-node SLURM cluster on this machine (Debian packages slurm-wlm and
# munge), run the workflow on it with the workflow profile profiles/slurm, run it locally
# too (profiles/default), and check that both give the same results:
# every .tsv byte-identical and every NIfTI's voxel data identical (tools/compare_results.py;
# benchmarks/ and logs/ hold timings and are skipped). The daemons started here are
# stopped on exit, also on failure or Ctrl-C.
#
# Usage (as root, from anywhere; Debian/Ubuntu without systemd is fine):
#   tools/slurm_local.sh                      full demo (config/config.yaml)
#   tools/slurm_local.sh --test               3-patient cohort (.test/config/config.yaml)
#   tools/slurm_local.sh --local-results DIR  compare with an existing local results folder
#                                             made with the same config and its own demo
#                                             folder (e.g. results/ after `make demo`)
#   tools/slurm_local.sh [...] -- ARGS...     extra snakemake arguments for the SLURM run
# Environment:
#   DCE_SLURM_DIR  daemons' state, spool, logs, pid files, munge socket (default /tmp/dce-slurm)
#   DCE_SLURM_OUT  outputs: demo/, slurm/, local/ and the run logs, relative to the
#                  repository (default results/slurm-check, results/slurm-check-test with --test)
#   VENV           virtual environment (default .venv, made by `make` if missing)
# Exit status: 0 results equal; 1 a difference or a failed run or set-up.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

TEST=0
LOCAL_RESULTS=""
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --test | --config-test) TEST=1 ;;
        --local-results)
            [[ $# -ge 2 ]] || { echo "--local-results needs a folder" >&2; exit 1; }
            LOCAL_RESULTS="$2"
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 1 ;;
    esac
    shift
done

if [[ -n "$LOCAL_RESULTS" ]]; then
    [[ -d "$LOCAL_RESULTS" ]] || { echo "--local-results: no folder $LOCAL_RESULTS" >&2; exit 1; }
    LOCAL_RESULTS=$(cd "$LOCAL_RESULTS" && pwd)
fi
cd "$(dirname "$0")/.."
REPO="$PWD"
SD="${DCE_SLURM_DIR:-/tmp/dce-slurm}"
VENV="${VENV:-.venv}"
CONF=/etc/slurm/slurm.conf
PARTITION=debug # the partition named in profiles/slurm/config.yaml
if [[ $TEST == 1 ]]; then
    OUT="${DCE_SLURM_OUT:-results/slurm-check-test}"
    CFG_ARGS=(--configfile .test/config/config.yaml)
    CFG_FILE=.test/config/config.yaml
else
    OUT="${DCE_SLURM_OUT:-results/slurm-check}"
    CFG_ARGS=()
    CFG_FILE=config/config.yaml
fi
OUT="${OUT%/}"
SD="${SD%/}"
for d in "$OUT" "$SD"; do
    case "$d" in "" | / | . | "$REPO") echo "refusing to use '$d' as a work folder" >&2; exit 1 ;; esac
done

log() { printf '[slurm_local %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (apt-get, $CONF, the daemons)"

# ----------------------------------------------------------------------------- software
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi
if [[ ! -x "$VENV/bin/snakemake" ]]; then
    [[ "$VENV" == .venv ]] || die "$VENV/bin/snakemake not found"
    log "creating .venv (make)"
    make .venv/.installed
fi
if ! "$VENV/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    log "installing the SLURM executor plugin into $VENV (pip install -c constraints.txt -e .[slurm])"
    "$VENV/bin/pip" install --quiet -c constraints.txt -e ".[slurm]"
    "$VENV/bin/pip" check
fi

# ----------------------------------------------------------------------------- daemons
STARTED=0
MUNGE_SOCKET="$SD/munge/munge.socket.2"
PIDFILES=("$SD/run/slurmd.pid" "$SD/run/slurmctld.pid" "$SD/munge/munged.pid")

pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemons() {
    # jobs left on this private cluster (a failed or interrupted run): cancel them by id
    if pid_alive "$SD/run/slurmctld.pid"; then
        local ids
        ids=$(squeue -h -o %i 2>/dev/null || true)
        if [[ -n "$ids" ]]; then
            log "cancelling leftover jobs: $(tr '\n' ' ' <<<"$ids")"
            # shellcheck disable=SC2086
            scancel $ids 2>/dev/null || true
            for _ in $(seq 30); do
                [[ -z "$(squeue -h -o %i -t PD,R,CG 2>/dev/null)" ]] && break
                sleep 1
            done
        fi
    fi
    local f pid
    for f in "${PIDFILES[@]}"; do
        pid_alive "$f" || continue
        pid=$(cat "$f")
        log "stopping $(ps -o comm= -p "$pid" 2>/dev/null || echo daemon) (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        rm -f "$f"
    done
}

# shellcheck disable=SC2317 # (called by the EXIT trap)
cleanup() {
    local rc=$?
    [[ $STARTED == 1 ]] && stop_daemons
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# daemons of an earlier run of this script that was killed: they are ours (pid files)
if pid_alive "$SD/run/slurmctld.pid" || pid_alive "$SD/run/slurmd.pid" ||
    pid_alive "$SD/munge/munged.pid"; then
    log "daemons of an earlier run found in $SD: stopping them first"
    stop_daemons
fi
for d in slurmctld slurmd; do
    if pgrep -x "$d" >/dev/null; then
        die "a $d not started by this script is running (pid $(pgrep -x "$d" | xargs)); stop it first"
    fi
done

NODE=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 - 1024)) # 1 GB for the OS
mkdir -p "$SD"/{state,spool/slurmd,log,run,munge} /etc/slurm
chown munge:munge "$SD/munge"
chmod 0755 "$SD/munge"

if [[ -f "$CONF" ]] && ! grep -q '^# written by tools/slurm_local.sh' "$CONF"; then
    log "keeping the existing $CONF as $CONF.bak"
    cp -p "$CONF" "$CONF.bak"
fi
# The config must be at /etc/slurm/slurm.conf: the jobstep plugin clears SLURM_* variables
# (SLURM_CONF too) before its srun inside each job.
cat >"$CONF" <<EOF
# written by tools/slurm_local.sh: one-node cluster $NODE for the workflow's SLURM check
ClusterName=dcelocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CryptoType=crypto/munge
MpiDefault=none
# no systemd/cgroups: track processes through /proc, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# keep finished jobs visible to squeue: without accounting the Snakemake plugin's status
# query is squeue (profiles/slurm), which must still see a job after it finished
MinJobAge=3600
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=$SD/run/slurmctld.pid
SlurmdPidFile=$SD/run/slurmd.pid
StateSaveLocation=$SD/state
SlurmdSpoolDir=$SD/spool/slurmd
SlurmctldLogFile=$SD/log/slurmctld.log
SlurmdLogFile=$SD/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    else
        create-munge-key -f
    fi
fi

log "starting munged, slurmctld, slurmd (node $NODE: $CPUS CPUs, $MEM_MB MB; state in $SD)"
STARTED=1
runuser -u munge -- munged --socket="$MUNGE_SOCKET" --pid-file="$SD/munge/munged.pid" \
    --log-file="$SD/munge/munged.log" --seed-file="$SD/munge/munged.seed"
munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET" >/dev/null ||
    die "munge does not work (see $SD/munge/munged.log)"
slurmctld -c -f "$CONF" # -c: no jobs from an earlier, interrupted run
slurmd -f "$CONF"
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    [[ "$state" == idle ]] && break
    sleep 1
done
[[ "$state" == idle ]] || die "node $NODE is '${state:-not reported}' after 60 s (see $SD/log/)"
log "cluster up: $(sinfo -h -o '%P %a %D %T %N' | xargs)"

# ----------------------------------------------------------------------------- runs
SM="$VENV/bin/snakemake"
# every SLURM job parses the Snakefile, config and schemas again when it starts, and every
# script runs from the working tree: edits made during the run end up in some jobs only
changed=$(git status --porcelain -- Snakefile workflow config .test dce 2>/dev/null | wc -l || true)
if [[ "${changed:-0}" -gt 0 ]]; then
    log "WARNING: $changed uncommitted change(s) in Snakefile/workflow/config/dce; edits made" \
        "while the runs go on reach some jobs only (use a clean checkout for a clean check)"
fi
mkdir -p "$OUT"
if [[ -n "$LOCAL_RESULTS" ]]; then
    [[ -d "$LOCAL_RESULTS" ]] || die "--local-results: no folder $LOCAL_RESULTS"
    # the SLURM run reads the demo folder the local run was made from (config's sessions)
    DEMO_ARGS=()
    rm -rf "$OUT/slurm"
else
    # a fresh demo cohort, written by the SLURM run's rule demo_cohort, read by both runs
    DEMO_ARGS=(sessions="$OUT/demo/sessions.tsv" lesions="$OUT/demo/lesions.tsv")
    rm -rf "$OUT/slurm" "$OUT/local" "$OUT/demo"
fi

# run NAME RESULTS SNAKEMAKE-ARGS...: one pipeline run; its wall time and job count
declare -A WALL JOBS LOAD
run() {
    local name=$1 results=$2 t0 t1 rc=0
    shift 2
    log "$name run -> $results ($CFG_FILE); output in $OUT/$name.log"
    LOAD[$name]="$(cut -d' ' -f1 /proc/loadavg)"
    t0=$(date +%s.%N)
    "$SM" "$@" "${CFG_ARGS[@]}" --config results="$results" "${DEMO_ARGS[@]}" \
        >"$OUT/$name.log" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    LOAD[$name]+=" -> $(cut -d' ' -f1 /proc/loadavg)"
    WALL[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b - a}')
    JOBS[$name]=$({ grep -Eo '[0-9]+ of [0-9]+ steps \(100%\) done' "$OUT/$name.log" || true; } |
        tail -n1 | awk '{print $3}')
    JOBS[$name]=${JOBS[$name]:-0}
    log "$name run: exit $rc, ${WALL[$name]} s wall, ${JOBS[$name]} jobs"
    if [[ $rc != 0 ]]; then
        tail -n 40 "$OUT/$name.log" >&2
        die "$name run failed (full output: $OUT/$name.log)"
    fi
}

# status checks 5 s after a submission (profile: 20 s, for a shared cluster)
run slurm "$OUT/slurm" --workflow-profile profiles/slurm \
    --slurm-init-seconds-before-status-checks 5 "${EXTRA[@]}"
SUBMITTED=$(grep -c 'has been submitted with SLURM jobid' "$OUT/slurm.log" || true)
log "SLURM jobs submitted: $SUBMITTED"

if [[ -n "$LOCAL_RESULTS" ]]; then
    LOCAL="$LOCAL_RESULTS"
    WALL[local]="-"
    JOBS[local]="-"
    LOAD[local]="-"
    log "comparing with the existing local results $LOCAL"
else
    LOCAL="$OUT/local"
    run local "$LOCAL" --workflow-profile profiles/default
fi

log "comparing $LOCAL with $OUT/slurm"
rc=0
"$VENV/bin/python" tools/compare_results.py "$LOCAL" "$OUT/slurm" | tee "$OUT/compare.txt" || rc=1
verdict=$([[ $rc == 0 ]] && echo EQUAL || echo DIFFERENT)
{
    echo "config        $CFG_FILE"
    echo "slurm run     ${WALL[slurm]} s wall, ${JOBS[slurm]} jobs ($SUBMITTED submitted to SLURM)," \
        "load average ${LOAD[slurm]}"
    echo "local run     ${WALL[local]} s wall, ${JOBS[local]} jobs, load average ${LOAD[local]}"
    echo "results       $verdict ($LOCAL vs $OUT/slurm)"
} | tee "$OUT/summary.txt"
exit "$rc"
