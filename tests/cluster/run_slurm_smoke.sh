#!/usr/bin/env bash
# Proves that profiles/slurm works against a real SLURM: a one-node SLURM 22.05 cluster on loopback
# (Debian's slurm-wlm: munge, MariaDB + slurmdbd for accounting, slurmctld, slurmd), then the smoke
# study (configs/smoke.yaml as results/smoke-slurm/) through `snakemake --profile profiles/slurm`.
# Checks: every fine-tune job went through sbatch (sacct and the job-completion log), and
# results/smoke-slurm/summary/runs.csv equals the local run's results/smoke/summary/runs.csv on every
# column but the timings. Stops the daemons it started, by their process ids, on any exit.
#
#   sudo tests/cluster/run_slurm_smoke.sh                 # everything (root: apt-get, daemons)
#   sudo tests/cluster/run_slurm_smoke.sh --cluster-only  # install + start + srun/sbatch probe, no study
#   options: --keep-daemons (leave the cluster running at exit), --no-install
# Environment: GLUE_DIR (default ../shared/data/glue beside the repo), SLURM_SMOKE_STATE (daemon
# state, logs and rendered configs; default /var/tmp/slurm-smoke), SLURM_SMOKE_DB_PORT (3307).
# Rerunnable: it reuses installed packages and the database, stops daemons a killed earlier run left
# behind (by the pids it recorded), and rebuilds results/smoke-slurm/ from scratch.
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${SLURM_SMOKE_STATE:-/var/tmp/slurm-smoke}
DB_PORT=${SLURM_SMOKE_DB_PORT:-3307}
DB_PASS=smoke-test-only
CLUSTER=smoke
PARTITION=smoke
ACCOUNT=smoke-acct
HOST=$(hostname -s)
SNAKEMAKE="$REPO/.venv/bin/snakemake"
PY="$REPO/.venv/bin/python"
STUDY=smoke-slurm
REF=smoke

CLUSTER_ONLY=0 KEEP=0 INSTALL=1
for arg in "$@"; do
  case "$arg" in
    --cluster-only) CLUSTER_ONLY=1 ;;
    --keep-daemons) KEEP=1 ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

T0=$(date +%s)
TSTEP=$T0
log() { printf '[%5ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
step() { local now; now=$(date +%s); log "-- $* (previous step took $(( now - TSTEP ))s)"; TSTEP=$now; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (installs packages, writes /etc/slurm, starts daemons)"
mkdir -p "$STATE"/{pids,log,run,spool/slurmctld,spool/slurmd,profile}

# ---------------------------------------------------------------- daemons: start/stop by pid
STARTED=()   # names of daemons this run started, in start order

stop_one() {   # stop_one NAME: TERM the pid recorded in $STATE/pids/NAME, wait, then KILL
  local name=$1 pidf="$STATE/pids/$1" pid comm
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  if [ -n "$comm" ] && [ "$comm" = "$(cat "$pidf.comm" 2>/dev/null || true)" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidf" "$pidf.comm"
}

stop_all() {   # reverse of the start order; also daemons a killed earlier run recorded
  local name
  for name in slurmd slurmctld slurmdbd mariadbd munged; do stop_one "$name"; done
}

on_exit() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "exit status $rc; last lines of the daemon logs:"
    for f in "$STATE"/log/{slurmctld,slurmd,slurmdbd,mariadb,munged}.log; do
      [ -s "$f" ] && { echo "== $f"; tail -n 15 "$f"; }
    done
  fi
  if [ $KEEP = 1 ]; then
    log "--keep-daemons: leaving running: $(for n in "${STARTED[@]}"; do printf '%s=%s ' "$n" "$(cat "$STATE/pids/$n")"; done)"
    log "stop them later with: kill \$(cat $STATE/pids/{slurmd,slurmctld,slurmdbd,mariadbd,munged})"
  else
    stop_all
  fi
  log "total wall time $(( $(date +%s) - T0 ))s, exit status $rc"
  exit $rc
}
trap on_exit EXIT
trap 'log "error at line $LINENO: $BASH_COMMAND"' ERR

start_bg() {   # start_bg NAME COMMAND...: a foreground daemon in the background; records its pid
  local name=$1; shift
  "$@" >>"$STATE/log/$name.out" 2>&1 &
  local pid=$!
  echo "$pid" >"$STATE/pids/$name"
  sleep 0.3
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$STATE/log/$name.out"; die "$name exited at start"; }
  cat "/proc/$pid/comm" >"$STATE/pids/$name.comm"
  STARTED+=("$name")
  log "started $name (pid $pid)"
}

wait_for() {   # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out after ${secs}s waiting for $what"
    sleep 1
  done
}

refuse_foreign() {   # a daemon of this name that this harness did not start would clash on ports
  local name=$1 pids
  pids=$(pgrep -x "$name" || true)
  [ -z "$pids" ] || die "a $name not started by this harness is running (pid $pids); stop it first"
}

# ---------------------------------------------------------------- 1. packages
step "packages"
need=(slurmctld slurmd slurmdbd sacct sacctmgr sbatch munged mariadbd mariadb-install-db)
missing=0
for b in "${need[@]}"; do command -v "$b" >/dev/null || missing=1; done
if [ $missing = 1 ]; then
  [ $INSTALL = 1 ] || die "SLURM/munge/MariaDB not installed and --no-install given"
  # Debian starts services from maintainer scripts unless policy-rc.d says no: we start our own.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurm-wlm slurmdbd slurm-client munge mariadb-server mariadb-client >"$STATE/log/apt.log" 2>&1 \
    || { tail -n 30 "$STATE/log/apt.log"; die "apt-get install failed"; }
  [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
  log "installed: $(dpkg-query -W -f='${Package} ${Version}, ' slurmctld slurmdbd munge mariadb-server)"
else
  log "already installed: $(dpkg-query -W -f='${Package} ${Version}, ' slurmctld slurmdbd munge mariadb-server 2>/dev/null)"
fi

# ---------------------------------------------------------------- 2. leftovers of an earlier run
step "stop daemons a previous (killed) run left behind"
stop_all
for d in slurmd slurmctld slurmdbd mariadbd munged; do refuse_foreign "$d"; done

# ---------------------------------------------------------------- 3. munge
step "munge"
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
start_bg munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
  --log-file="$STATE/log/munged.log"
chown munge:munge "$STATE/log/munged.log" 2>/dev/null || true
wait_for 20 "munge" bash -c 'munge -n | unmunge'

# ---------------------------------------------------------------- 4. MariaDB for slurmdbd
step "mariadb on 127.0.0.1:$DB_PORT"
DB_DIR=$STATE/mysql DB_SOCK=$STATE/run/mysqld.sock
if [ ! -d "$DB_DIR/mysql" ]; then
  rm -rf "$DB_DIR"
  mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR" --skip-test-db \
    >"$STATE/log/mariadb-install.log" 2>&1 || { tail "$STATE/log/mariadb-install.log"; die "mariadb-install-db"; }
fi
chown -R mysql:mysql "$DB_DIR"
chown mysql:mysql "$STATE/run"
start_bg mariadbd /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" \
  --socket="$DB_SOCK" --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$STATE/run/mariadbd.pid" \
  --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=256M --skip-log-bin
wait_for 60 "mariadb" mariadb-admin --socket="$DB_SOCK" -u root ping
mariadb --socket="$DB_SOCK" -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SET GLOBAL innodb_lock_wait_timeout = 900;
SQL

# ---------------------------------------------------------------- 5. SLURM configuration
step "render /etc/slurm/slurm.conf and slurmdbd.conf"
mkdir -p /etc/slurm
MARK="# written by tests/cluster/run_slurm_smoke.sh"
for f in slurm.conf slurmdbd.conf; do   # keep a copy of a configuration that is not ours, once
  if [ -f "/etc/slurm/$f" ] && ! grep -qF "$MARK" "/etc/slurm/$f" && [ ! -e "/etc/slurm/$f.before-smoke" ]; then
    cp -p "/etc/slurm/$f" "/etc/slurm/$f.before-smoke"; log "saved /etc/slurm/$f.before-smoke"
  fi
done
# The node's real hardware, as slurmd itself sees it (CPUs, sockets, cores, threads, memory).
NODE_HW=$(slurmd -C | head -n1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore|RealMemory)=' | tr '\n' ' ')
[ -n "$NODE_HW" ] || die "slurmd -C reported no hardware"
render() {
  { echo "$MARK from $HERE/$1"; sed -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$HOST|g" -e "s|@CLUSTER@|$CLUSTER|g" \
      -e "s|@PARTITION@|$PARTITION|g" -e "s|@NODE_HW@|$NODE_HW|g" -e "s|@DB_PORT@|$DB_PORT|g" \
      -e "s|@DB_PASS@|$DB_PASS|g" "$HERE/$1"; } >"$2"
}
render slurm.conf.in /etc/slurm/slurm.conf
render slurmdbd.conf.in /etc/slurm/slurmdbd.conf
chmod 600 /etc/slurm/slurmdbd.conf; chmod 644 /etc/slurm/slurm.conf
if [ -f "$HERE/cgroup.conf" ]; then cp "$HERE/cgroup.conf" /etc/slurm/cgroup.conf; fi
log "node: $NODE_HW"

# ---------------------------------------------------------------- 6. slurmdbd, cluster and account
step "slurmdbd"
start_bg slurmdbd /usr/sbin/slurmdbd -D
wait_for 120 "slurmdbd (sacctmgr answers)" sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" || \
  sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" Description="snakemake smoke" Organization=smoke >/dev/null
sacctmgr -n -P list user "$(id -un)" format=user,account -s | grep -q "|$ACCOUNT\$" || \
  sacctmgr -i add user "$(id -un)" account="$ACCOUNT" cluster="$CLUSTER" DefaultAccount="$ACCOUNT" >/dev/null
log "associations: $(sacctmgr -n -P list assoc cluster=$CLUSTER format=cluster,account,user | tr '\n' ' ')"

# ---------------------------------------------------------------- 7. slurmctld + slurmd
step "slurmctld and slurmd"
start_bg slurmctld /usr/sbin/slurmctld -D -i
wait_for 60 "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q UP'
start_bg slurmd /usr/sbin/slurmd -D -N localhost
node_state() { sinfo -h -N -n localhost -o %T 2>/dev/null | head -n1; }
end=$(( $(date +%s) + 90 ))
until [ "$(node_state)" = idle ]; do
  case "$(node_state)" in
    drain*|down*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
  esac
  [ "$(date +%s)" -lt "$end" ] || { sinfo -N -l; die "node localhost not idle after 90s"; }
  sleep 2
done
sinfo
log "node localhost is idle"

# ---------------------------------------------------------------- 8. probe: srun and sbatch
step "probe: srun hostname, sbatch --wrap, sacct"
srun -A "$ACCOUNT" -p "$PARTITION" -N1 -n1 -t 1 hostname
probe=$(sbatch --parsable -A "$ACCOUNT" -p "$PARTITION" -t 1 -o "$STATE/log/probe-%j.out" --wrap 'hostname; echo probe-ok')
wait_for 60 "probe job $probe in sacct as COMPLETED" bash -c "sacct -n -X -P -j $probe -o JobName,State | grep -qx 'wrap|COMPLETED'"
sacct -X -j "$probe" -o JobID,JobName,Account,Partition,State,ExitCode,Elapsed
grep -q probe-ok "$STATE/log/probe-$probe.out" || die "probe job output missing"
log "SLURM works: srun, sbatch and sacct (slurmdbd) answer"

# ---------------------------------------------------------------- 9. the profile, and a light probe
export GLUE_DIR=${GLUE_DIR:-$(cd "$REPO/../shared/data/glue" 2>/dev/null && pwd || true)}
[ -n "$GLUE_DIR" ] && [ -d "$GLUE_DIR" ] || die "set GLUE_DIR to a GLUE folder (default ../shared/data/glue)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export SLURM_ACCOUNT=$ACCOUNT SLURM_PARTITION=$PARTITION   # read by profiles/slurm's default-resources
cd "$REPO"
step "profile for the test cluster: profiles/slurm + tests/cluster/profile-overlay.yaml"
"$PY" - "$REPO/profiles/slurm/config.yaml" "$HERE/profile-overlay.yaml" "$STATE/profile/config.yaml" <<'PYEOF'
import sys, yaml
base = yaml.safe_load(open(sys.argv[1]))
over = yaml.safe_load(open(sys.argv[2]))
def merge(a, b):
    for k, v in b.items():
        if v is None:
            a.pop(k, None)
        elif isinstance(v, dict) and isinstance(a.get(k), dict):
            merge(a[k], v)
        else:
            a[k] = v
    return a
yaml.safe_dump(merge(base, over), open(sys.argv[3], "w"), sort_keys=False)
PYEOF
diff <("$PY" -c 'import sys,yaml;print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1])),sort_keys=True))' profiles/slurm/config.yaml) \
     <("$PY" -c 'import sys,yaml;print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1])),sort_keys=True))' "$STATE/profile/config.yaml") || true

step "probe: the workflow's cheapest job (study_config) through the profile and sbatch"
rm -rf "results/$STUDY"
"$SNAKEMAKE" --profile "$STATE/profile" --configfile configs/smoke.yaml tests/cluster/slurm-smoke.yaml \
  -- "results/$STUDY/study.json" >"$STATE/log/snakemake-probe.log" 2>&1 \
  || { tail -n 40 "$STATE/log/snakemake-probe.log"; die "snakemake probe through SLURM failed"; }
grep -E "has been submitted with SLURM jobid|steps \(100%\) done" "$STATE/log/snakemake-probe.log"

if [ $CLUSTER_ONLY = 1 ]; then
  rm -rf "results/$STUDY"
  step "--cluster-only: done"
  exit 0
fi

# ---------------------------------------------------------------- 10. local reference run
step "local reference: results/$REF (smoke study, --cores 2; a no-op when it is up to date)"
"$SNAKEMAKE" --cores 2 --configfile configs/smoke.yaml --rerun-incomplete >"$STATE/log/snakemake-local.log" 2>&1 \
  || { tail -n 40 "$STATE/log/snakemake-local.log"; die "local smoke run failed"; }
tail -n 3 "$STATE/log/snakemake-local.log"
[ -s "results/$REF/summary/runs.csv" ] || die "no results/$REF/summary/runs.csv"

# ---------------------------------------------------------------- 11. the study through SLURM
step "smoke study through SLURM -> results/$STUDY"
rm -rf "results/$STUDY"
SINCE=$(date +%Y-%m-%dT%H:%M:%S)
set +e
"$SNAKEMAKE" --profile "$STATE/profile" --configfile configs/smoke.yaml tests/cluster/slurm-smoke.yaml \
  >"$STATE/log/snakemake-slurm.log" 2>&1
rc=$?
set -e
grep -E "SLURM run ID|has been submitted with SLURM jobid|steps \(100%\) done|Error|error" "$STATE/log/snakemake-slurm.log" | head -n 60 || true
[ $rc = 0 ] || { tail -n 60 "$STATE/log/snakemake-slurm.log"; die "snakemake --profile slurm exited $rc"; }
log "snakemake through SLURM finished (log: $STATE/log/snakemake-slurm.log)"

# ---------------------------------------------------------------- 12. checks
step "check: every fine-tune job went through sbatch"
RUN_ID=$(sed -n 's/.*SLURM run ID: \([A-Za-z0-9_-]*\).*/\1/p' "$STATE/log/snakemake-slurm.log" | head -n1)
[ -n "$RUN_ID" ] || die "no 'SLURM run ID' in the snakemake log"
EXPECTED=$(( $(wc -l <"results/$REF/summary/runs.csv") - 1 ))
RUNS_SLURM=$(( $(wc -l <"results/$STUDY/summary/runs.csv") - 1 ))
SUBMITTED=$(grep -c "has been submitted with SLURM jobid" "$STATE/log/snakemake-slurm.log" || true)
sacct_rows() { sacct -X -n -P -S "$SINCE" --name="$RUN_ID" -o JobID,Comment%300,State,Elapsed,AllocCPUS,ReqMem,ExitCode; }
# slurmctld hands finished jobs to slurmdbd asynchronously: give it a moment.
end=$(( $(date +%s) + 60 ))
until [ "$(sacct_rows | grep -c '|rule_finetune_.*|COMPLETED|' || true)" -ge "$EXPECTED" ] || [ "$(date +%s)" -ge "$end" ]; do sleep 3; done
echo "sacct -X -S $SINCE --name=$RUN_ID -o JobID,Comment,State,Elapsed,AllocCPUS,ReqMem,ExitCode"
sacct -X -S "$SINCE" --name="$RUN_ID" -o JobID,Comment%58,State,Elapsed,AllocCPUS,ReqMem,ExitCode
FT_DONE=$(sacct_rows | awk -F'|' '$2 ~ /^rule_finetune_/ && $3 == "COMPLETED" {print $2}' | sort -u | wc -l)
ALL_DONE=$(sacct_rows | awk -F'|' '$3 == "COMPLETED"' | wc -l)
JOBCOMP=$(grep -c " Name=$RUN_ID JobState=COMPLETED " "$STATE/log/jobcomp.log" || true)
log "runs in the study: $EXPECTED (local runs.csv), $RUNS_SLURM (SLURM runs.csv)"
log "sbatch submissions in the snakemake log: $SUBMITTED; COMPLETED in sacct: $ALL_DONE jobs, of which fine-tune runs: $FT_DONE; COMPLETED in the job-completion log: $JOBCOMP"
[ "$RUNS_SLURM" = "$EXPECTED" ] || die "SLURM runs.csv has $RUNS_SLURM runs, expected $EXPECTED"
[ "$FT_DONE" = "$EXPECTED" ] || die "sacct lists $FT_DONE completed fine-tune jobs, expected $EXPECTED"
[ "$JOBCOMP" -ge "$EXPECTED" ] || die "job-completion log lists $JOBCOMP completed jobs, expected >= $EXPECTED"
n_missing=0
for rec in results/$STUDY/runs/*/*/seed*/record.json; do
  d=${rec%/record.json}; d=${d#results/$STUDY/runs/}; IFS=/ read -r t c s <<<"$d"
  sacct_rows | grep -qF "|rule_finetune_wildcards_${t}_${c}_${s#seed}|COMPLETED|" || { log "no sacct job for $d"; n_missing=$((n_missing+1)); }
done
[ $n_missing = 0 ] || die "$n_missing runs have no completed SLURM job"

step "check: runs.csv through SLURM == local runs.csv (all columns but timings)"
"$PY" - "results/$REF/summary/runs.csv" "results/$STUDY/summary/runs.csv" <<'PYEOF'
import csv, re, sys
TIMING = re.compile(r"(^wall_s$|_per_s$|^device$|time)")
def load(p):
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["task"], r["condition"], r["seed"]): r for r in rows}, list(rows[0].keys()) if rows else []
a, ca = load(sys.argv[1]); b, cb = load(sys.argv[2])
if ca != cb:
    sys.exit(f"different columns:\n  local {ca}\n  slurm {cb}")
if sorted(a) != sorted(b):
    sys.exit(f"different runs: only local {sorted(set(a) - set(b))}, only slurm {sorted(set(b) - set(a))}")
cols = [c for c in ca if not TIMING.search(c)]
bad = [(k, c, a[k][c], b[k][c]) for k in sorted(a) for c in cols if a[k][c] != b[k][c]]
for k, c, x, y in bad[:20]:
    print(f"  {'/'.join(k)} {c}: local {x} != slurm {y}")
if bad:
    sys.exit(f"{len(bad)} differing values in {len({k for k, *_ in bad})} runs")
print(f"identical: {len(a)} runs x {len(cols)} columns (ignored: {[c for c in ca if c not in cols]})")
PYEOF

step "PASS"
log "smoke study through SLURM: $EXPECTED fine-tune runs via sbatch, runs.csv identical to the local run"
