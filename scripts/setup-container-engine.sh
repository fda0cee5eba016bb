#!/usr/bin/env bash
# Set up a Docker-compatible container engine (rootful podman + its API socket) for `--sandbox docker`.
# Idempotent; run as root (CI runs it before the tests). Facts behind each step: shared/NOTES.md "Containers".
#
#   scripts/setup-container-engine.sh [--no-image]
#
# Environment: CODEGEN_EVAL_SOCKET (default /run/podman/podman.sock), CODEGEN_EVAL_IMAGE (default
# codegen-eval-sandbox:1), PYTHON (interpreter that has codegen_eval's deps; default: python3 on PATH).
set -euo pipefail

SOCKET="${CODEGEN_EVAL_SOCKET:-/run/podman/podman.sock}"
IMAGE="${CODEGEN_EVAL_IMAGE:-codegen-eval-sandbox:1}"
PYTHON="${PYTHON:-python3}"
BUILD_IMAGE=1
[[ "${1:-}" == "--no-image" ]] && BUILD_IMAGE=0
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say() { printf '[setup-container-engine] %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    say "must run as root (rootful podman)"; exit 1
fi

# 1. Packages. runc instead of crun: crun 1.8 rejects the hybrid cgroup v1/v2 layout of these VMs.
missing=()
for cmd in podman runc debootstrap curl; do command -v "$cmd" >/dev/null || missing+=("$cmd"); done
if ((${#missing[@]})); then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends podman runc debootstrap curl >/dev/null \
        || { apt-get update >/dev/null && apt-get install -y --no-install-recommends podman runc debootstrap curl >/dev/null; }
else
    say "podman, runc, debootstrap already installed"
fi

# 2. Engine configuration. The Docker-compatible API ignores the SDK's runtime= argument, so the runtime must be
# the default. Default ulimits must not exceed the limits podman itself runs with, or every container fails to
# start ("error setting rlimit type 6"): the host's hard limits, and for nproc also kernel.pid_max (podman caps
# its own RLIMIT_NPROC there; measured 32768 on a VM whose hard limit is 96365).
hard_nofile=$(ulimit -Hn); hard_nproc=$(ulimit -Hu); pid_max=$(cat /proc/sys/kernel/pid_max)
nofile=20000; nproc=$pid_max
[[ "$hard_nofile" != unlimited && "$hard_nofile" -lt "$nofile" ]] && nofile=$hard_nofile
[[ "$hard_nproc" != unlimited && "$hard_nproc" -le "$nproc" ]] && nproc=$((hard_nproc - 1))
conf=/etc/containers/containers.conf
want=$(cat <<CONF
# Written by codegen-eval scripts/setup-container-engine.sh
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)
mkdir -p /etc/containers
conf_changed=0
if [[ -f "$conf" ]] && [[ "$(cat "$conf")" == "$want" ]]; then
    say "$conf already configured (runc, nofile=$nofile, nproc=$nproc)"
else
    if [[ -f "$conf" ]] && ! grep -q 'codegen-eval' "$conf"; then
        cp "$conf" "$conf.orig"; say "kept the previous $conf as $conf.orig"
    fi
    printf '%s\n' "$want" >"$conf"
    conf_changed=1
    say "wrote $conf (runtime runc, cgroupfs, ulimits nofile=$nofile nproc=$nproc)"
fi

# 3. API service. --time=0: never exit when idle. The service reads containers.conf only when it starts.
ping() { curl -fsS --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }
pidfile=/run/codegen-eval-podman.pid
if ((conf_changed)) && ping; then
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -n "$pid" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'podman system service'; then
        say "restarting the podman API service (pid $pid) so it reads the new $conf"
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    else
        say "WARNING: a podman API service not started by this script answers on $SOCKET; restart it to apply $conf"
    fi
fi
if ping; then
    say "podman API already answering on $SOCKET"
else
    mkdir -p "$(dirname "$SOCKET")"
    rm -f "$SOCKET"
    log=/var/log/codegen-eval-podman.log
    say "starting: podman system service --time=0 unix://$SOCKET (log: $log)"
    nohup setsid podman system service --time=0 "unix://$SOCKET" >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 100); do ping && break; sleep 0.2; done
    ping || { say "podman API did not answer on $SOCKET; see $log"; tail -20 "$log"; exit 1; }
    say "podman API answering on $SOCKET"
fi

# 4. Default image, built locally (no registry needed). Cached: a re-run with the image present is a no-op.
if ((BUILD_IMAGE)); then
    say "ensuring image $IMAGE (codegen-eval sandbox build-image)"
    DOCKER_HOST="unix://$SOCKET" PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" \
        "$PYTHON" -m codegen_eval.sandbox.container_cli build-image --tag "$IMAGE"
fi
say "done: export DOCKER_HOST=unix://$SOCKET (or leave it unset: the sandbox finds this socket itself)"
