#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (idempotent).
#
#   scripts/docker-engine.sh            # exit 0 once `docker info` answers
#
# - If `docker info` already answers: exit 0, touch nothing.
# - Not root and no engine: explain and exit 1.
# - Root: install docker.io with apt if dockerd is missing, then start
#   `dockerd` detached (setsid/nohup) with no bridge, no iptables, no
#   ip-forwarding (containers are meant to run with --network host), and wait
#   until `docker info` answers.  Storage driver: overlay2, falling back to vfs
#   when overlay2 does not work here.
#
# Environment overrides:
#   MQKIT_DOCKERD_LOG             log file            (/var/log/mqkit-dockerd.log)
#   MQKIT_DOCKERD_STORAGE_DRIVER  force one driver    (default: try overlay2, then vfs)
#   MQKIT_DOCKERD_TIMEOUT         seconds to wait     (60)
#   MQKIT_DOCKERD_EXTRA_ARGS      extra dockerd flags (word-split)
set -euo pipefail

LOG="${MQKIT_DOCKERD_LOG:-/var/log/mqkit-dockerd.log}"
TIMEOUT="${MQKIT_DOCKERD_TIMEOUT:-60}"
PIDFILE=/var/run/mqkit-dockerd.pid

say() { printf 'docker-engine: %s\n' "$*" >&2; }

engine_up() {
    command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1
}

if engine_up; then
    say "engine already answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    if command -v dockerd >/dev/null 2>&1; then
        say "no Docker engine answers (docker info failed) and starting dockerd needs root."
    else
        say "no Docker engine here (dockerd not installed) and installing/starting one needs root."
    fi
    say "ask an admin to run: sudo $0   (or add yourself to the 'docker' group), or use mqkit's process backend."
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "dockerd missing: installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-o DPkg::Lock::Timeout=300)
    if ! apt-get "${apt_opts[@]}" install -y docker.io; then
        apt-get "${apt_opts[@]}" update
        apt-get "${apt_opts[@]}" install -y docker.io
    fi
fi
command -v docker >/dev/null 2>&1 || { say "docker CLI missing after install"; exit 1; }

# A previous dockerd of ours still running but not answering: give it a moment, else stop it.
if [[ -s "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
    for _ in $(seq 1 "$TIMEOUT"); do engine_up && exit 0; sleep 1; done
    say "dockerd pid $(cat "$PIDFILE") never answered; see $LOG"
    exit 1
fi
if pgrep -x dockerd >/dev/null 2>&1; then
    say "a dockerd not started by this script is running (pid $(pgrep -x dockerd | tr '\n' ' ')) but docker info fails; not touching it"
    exit 1
fi

flags=(--bridge=none --iptables=false --ip-forward=false --ip-masq=false)
if dockerd --help 2>&1 | grep -q -- '--ip6tables'; then
    flags+=(--ip6tables=false)
fi
# shellcheck disable=SC2206
[[ -n "${MQKIT_DOCKERD_EXTRA_ARGS:-}" ]] && flags+=(${MQKIT_DOCKERD_EXTRA_ARGS})

if [[ -n "${MQKIT_DOCKERD_STORAGE_DRIVER:-}" ]]; then
    drivers=("$MQKIT_DOCKERD_STORAGE_DRIVER")
else
    drivers=(overlay2 vfs)
fi

mkdir -p "$(dirname "$LOG")"
start=$SECONDS
for drv in "${drivers[@]}"; do
    say "starting dockerd --storage-driver=$drv ${flags[*]} (log: $LOG)"
    printf '\n==== %s mqkit docker-engine.sh: dockerd --storage-driver=%s %s\n' \
        "$(date -Is)" "$drv" "${flags[*]}" >>"$LOG"
    setsid nohup dockerd --storage-driver="$drv" "${flags[@]}" >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDFILE"
    deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        if engine_up; then
            say "engine up after $((SECONDS - start)) s (dockerd pid $pid, storage driver $drv)"
            exit 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "dockerd ($drv) did not answer within ${TIMEOUT}s; stopping it"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
    else
        say "dockerd exited with storage driver $drv; last log lines:"
        tail -n 5 "$LOG" >&2 || true
    fi
    rm -f "$PIDFILE"
done

say "could not start a Docker engine (tried storage drivers: ${drivers[*]}); see $LOG"
exit 1
