#!/usr/bin/env bash
# Build LOCAL stand-in images for the official RabbitMQ / Mosquitto images, for machines
# where no image registry is reachable.  Idempotent: an image whose tag already exists is
# not rebuilt (MQKIT_STANDIN_REBUILD=1 forces a rebuild of everything).
#
#   sudo docker/standin/build.sh          # needs root (debootstrap) and a Docker engine
#
# Steps: debootstrap a minbase Debian (rabbitmq-server + mosquitto from the Debian archive)
# into a cache dir outside the git tree, `docker import` it as the base image, then build
# the small images in docker/standin/{rabbitmq,mosquitto,python} FROM that base (no network
# needed by `docker build`).  The rootfs is deleted afterwards.  The python image stands in
# for python:3.x-slim (the compose example's base): Debian's python3 in a venv that is first
# on PATH, and a wheel folder for docker/mqtt-python/requirements.txt that pip installs from
# without an index (downloaded here, on the host, with pip).
#
# One Debian suite per run, and its images are tagged by the broker line it holds:
#
#   suite            RabbitMQ                                 Mosquitto
#   bookworm         mqkit-standin/rabbitmq:3.10-management   mqkit-standin/mosquitto:2.0 (2.0.11)
#   trixie           mqkit-standin/rabbitmq:4.0-management    mqkit-standin/mosquitto:2.0.21
#   sid / unstable   mqkit-standin/rabbitmq:4.3-management    mqkit-standin/mosquitto:2.1
#
# (bookworm's debootstrap has no `forky` script: sid is spelled `sid` or `unstable`.)  The
# packages a fresh base holds are checked against these tags: when sid moves on to another
# line the build stops and says so, rather than tag RabbitMQ 4.4 as 4.3.  The python image is
# built from bookworm only (its tag names no suite).
#
# Environment overrides:
#   MQKIT_STANDIN_BASE_IMAGE       base image tag      (mqkit-standin/base:SUITE)
#   MQKIT_STANDIN_RABBITMQ_IMAGE   RabbitMQ image tag  (the suite's, above)
#   MQKIT_STANDIN_MOSQUITTO_IMAGE  Mosquitto image tag (the suite's, above)
#   MQKIT_STANDIN_PYTHON_IMAGE     Python image tag    (mqkit-standin/python:3; bookworm only
#                                  unless set)
#   MQKIT_STANDIN_SUITE            Debian suite        (bookworm)
#   MQKIT_STANDIN_MIRROR           Debian mirror       (first matching one in apt's sources)
#   MQKIT_STANDIN_CACHE            work dir for rootfs (/var/cache/mqkit-standin)
#   MQKIT_STANDIN_REBUILD=1        rebuild even if the tags exist
#
# Prints the image names on stdout at the end, one `KEY=value` per line.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SUITE="${MQKIT_STANDIN_SUITE:-bookworm}"
[[ "$SUITE" == unstable ]] && SUITE=sid
# suite -> the RabbitMQ and Mosquitto versions its packages must start with (the tags' lines)
case "$SUITE" in
    bookworm) RABBITMQ_LINE=3.10 MOSQUITTO_LINE=2.0.11 MOSQUITTO_TAG=2.0 ;;
    trixie)   RABBITMQ_LINE=4.0  MOSQUITTO_LINE=2.0.21 MOSQUITTO_TAG=2.0.21 ;;
    sid)      RABBITMQ_LINE=4.3  MOSQUITTO_LINE=2.1    MOSQUITTO_TAG=2.1 ;;
    *) printf 'standin-build: ERROR: unknown suite %s (bookworm, trixie, sid)\n' "$SUITE" >&2
       exit 1 ;;
esac
BASE_IMAGE="${MQKIT_STANDIN_BASE_IMAGE:-mqkit-standin/base:${SUITE}}"
RABBITMQ_IMAGE="${MQKIT_STANDIN_RABBITMQ_IMAGE:-mqkit-standin/rabbitmq:${RABBITMQ_LINE}-management}"
MOSQUITTO_IMAGE="${MQKIT_STANDIN_MOSQUITTO_IMAGE:-mqkit-standin/mosquitto:${MOSQUITTO_TAG}}"
if [[ "$SUITE" == bookworm ]]; then
    PYTHON_IMAGE="${MQKIT_STANDIN_PYTHON_IMAGE:-mqkit-standin/python:3}"
else
    PYTHON_IMAGE="${MQKIT_STANDIN_PYTHON_IMAGE:-}"
fi
CACHE="${MQKIT_STANDIN_CACHE:-/var/cache/mqkit-standin}"
REBUILD="${MQKIT_STANDIN_REBUILD:-0}"
# mosquitto-clients: the official eclipse-mosquitto image has mosquitto_sub (the compose
# example's healthcheck uses it); python3-venv: the python stand-in.
PACKAGES="rabbitmq-server,mosquitto,mosquitto-clients,python3,python3-venv"
# Bumped whenever PACKAGES or the base's contents change: a cached base of another revision
# (and every image built FROM it) is rebuilt.
REVISION=2

say() { printf 'standin-build: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
need_build() { [[ "$REBUILD" == 1 ]] || ! image_exists "$1"; }
revision_of() { docker image inspect -f '{{ index .Config.Labels "io.mqkit.standin.revision" }}' "$1" 2>/dev/null || true; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found (run scripts/docker-engine.sh first)"
timeout 15 docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/docker-engine.sh first)"

# --- Debian mirror: the one apt already uses for $SUITE -------------------------------------
detect_mirror() {
    local f line uris suites u s
    # one-line format: deb [opts] URI SUITE COMPONENTS...
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        while read -r line; do
            line="$(sed -E 's/\[[^]]*\]//' <<<"$line")"
            read -r _ u s _ <<<"$line"
            if [[ "$s" == "$SUITE" && "$u" == http* ]]; then echo "$u"; return 0; fi
        done < <(grep -E '^\s*deb\s' "$f" || true)
    done
    # deb822 format: stanzas with URIs: / Suites:
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        uris="" suites=""
        while IFS= read -r line || [[ -n "$line" ]]; do
            case "$line" in
                URIs:*) uris="${line#URIs:}" ;;
                Suites:*) suites="${line#Suites:}" ;;
                "")
                    for s in $suites; do
                        if [[ "$s" == "$SUITE" ]]; then
                            for u in $uris; do [[ "$u" == http* ]] && { echo "$u"; return 0; }; done
                        fi
                    done
                    uris="" suites="" ;;
            esac
        done < <(grep -v '^\s*#' "$f"; echo)
    done
    return 1
}

# --- base image: debootstrap + docker import --------------------------------------------------
ROOTFS=""
cleanup() {
    local rc=$?
    if [[ -n "$ROOTFS" && -d "$ROOTFS" ]]; then
        # never rm -rf through a mount left behind by debootstrap
        local m
        while read -r m; do umount -l "$m" 2>/dev/null || true; done \
            < <(findmnt -rn -o TARGET | grep -F "$ROOTFS" | sort -r || true)
        if findmnt -rn -o TARGET | grep -qF "$ROOTFS"; then
            say "mounts still present under $ROOTFS; not deleting it"
        else
            rm -rf --one-file-system "$ROOTFS"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT

t0=$SECONDS
if need_build "$BASE_IMAGE" || [[ "$(revision_of "$BASE_IMAGE")" != "$REVISION" ]]; then
    REBUILD=1  # the images FROM the old base are stale too
    [[ "$(id -u)" -eq 0 ]] || die "building the base image needs root (debootstrap)"
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap missing: apt-get install -y debootstrap"
    # trixie and sid are not in apt's sources: the mirror that serves bookworm serves them too
    MIRROR="${MQKIT_STANDIN_MIRROR:-$(detect_mirror || SUITE=bookworm detect_mirror \
                                      || echo http://deb.debian.org/debian)}"
    mkdir -p "$CACHE"
    ROOTFS="$CACHE/rootfs-$SUITE.$$"
    say "debootstrap --variant=minbase --include=$PACKAGES $SUITE $ROOTFS $MIRROR"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
    say "debootstrap done after $((SECONDS - t0)) s"

    # Package scripts may have started daemons (epmd) inside the chroot: stop only those.
    for p in /proc/[0-9]*; do
        r="$(readlink "$p/root" 2>/dev/null || true)"
        if [[ "$r" == "$ROOTFS" ]]; then
            say "stopping process ${p#/proc/} left running in the chroot: $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
            kill "${p#/proc/}" 2>/dev/null || true
        fi
    done

    # Trim and neutralise host-specific state.
    chroot "$ROOTFS" apt-get clean
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
           "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/var/log/rabbitmq/* \
           "$ROOTFS"/var/lib/rabbitmq/mnesia "$ROOTFS"/var/lib/rabbitmq/.erlang.cookie \
           "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
           "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
    find "$ROOTFS"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    : >"$ROOTFS/etc/hostname"
    rm -f "$ROOTFS/etc/resolv.conf"
    printf 'deb %s %s main\n' "$MIRROR" "$SUITE" >"$ROOTFS/etc/apt/sources.list"

    rabbit_ver="$(chroot "$ROOTFS" dpkg-query -W -f '${Version}' rabbitmq-server)"
    mosq_ver="$(chroot "$ROOTFS" dpkg-query -W -f '${Version}' mosquitto)"
    say "packages: rabbitmq-server $rabbit_ver, mosquitto $mosq_ver"

    say "docker import -> $BASE_IMAGE"
    tar --numeric-owner --xattrs -C "$ROOTFS" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
        -c 'CMD ["/bin/bash"]' \
        -c "LABEL io.mqkit.standin=base io.mqkit.standin.revision=$REVISION io.mqkit.standin.rabbitmq-server=$rabbit_ver io.mqkit.standin.mosquitto=$mosq_ver" \
        -m "mqkit stand-in base: debootstrap $SUITE minbase + $PACKAGES" \
        - "$BASE_IMAGE" >/dev/null
    rm -rf --one-file-system "$ROOTFS"
    ROOTFS=""
    say "base image built after $((SECONDS - t0)) s"
else
    say "base image $BASE_IMAGE exists; skipping debootstrap"
fi

# The tags promise a broker line: hold the base's packages to it.
label_of() { docker image inspect -f "{{ index .Config.Labels \"io.mqkit.standin.$2\" }}" "$1"; }
RABBITMQ_VERSION="$(label_of "$BASE_IMAGE" rabbitmq-server)"
MOSQUITTO_VERSION="$(label_of "$BASE_IMAGE" mosquitto)"
[[ "$RABBITMQ_VERSION" == "$RABBITMQ_LINE".* ]] \
    || die "$SUITE holds rabbitmq-server $RABBITMQ_VERSION, not $RABBITMQ_LINE.x: update the suite table in $0"
[[ "$MOSQUITTO_VERSION" == "$MOSQUITTO_LINE"[.-]* ]] \
    || die "$SUITE holds mosquitto $MOSQUITTO_VERSION, not $MOSQUITTO_LINE: update the suite table in $0"
say "$SUITE: rabbitmq-server $RABBITMQ_VERSION, mosquitto $MOSQUITTO_VERSION"

build_image() {
    local tag="$1" dir="$2" version="$3" t=$SECONDS
    if need_build "$tag"; then
        say "docker build -t $tag $dir"
        DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE=$BASE_IMAGE" \
            --label "io.mqkit.standin.suite=$SUITE" --label "io.mqkit.standin.version=$version" \
            -t "$tag" "$dir" >&2
        say "$tag built in $((SECONDS - t)) s"
    else
        say "image $tag exists; skipping"
    fi
}
build_image "$RABBITMQ_IMAGE" "$HERE/rabbitmq" "$RABBITMQ_VERSION"
build_image "$MOSQUITTO_IMAGE" "$HERE/mosquitto" "$MOSQUITTO_VERSION"

# The python image's build context: its Dockerfile plus the wheels, in a scratch folder.
if [[ -z "$PYTHON_IMAGE" ]]; then
    say "no python image from $SUITE (bookworm builds mqkit-standin/python:3)"
elif need_build "$PYTHON_IMAGE"; then
    context="$(mktemp -d)"
    cp "$HERE/python/Dockerfile" "$context/"
    "${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check \
        -d "$context/wheels" -r "$HERE/../mqtt-python/requirements.txt" >&2 \
        || die "pip download of docker/mqtt-python/requirements.txt failed"
    build_image "$PYTHON_IMAGE" "$context" python3
    rm -rf "$context"
else
    say "image $PYTHON_IMAGE exists; skipping"
fi

say "done in $((SECONDS - t0)) s"
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -F -e "$BASE_IMAGE" -e "$RABBITMQ_IMAGE" -e "$MOSQUITTO_IMAGE" -e "${PYTHON_IMAGE:-$BASE_IMAGE}" >&2 || true
printf 'MQKIT_STANDIN_BASE_IMAGE=%s\nMQKIT_STANDIN_RABBITMQ_IMAGE=%s\nMQKIT_STANDIN_MOSQUITTO_IMAGE=%s\n' \
    "$BASE_IMAGE" "$RABBITMQ_IMAGE" "$MOSQUITTO_IMAGE"
[[ -z "$PYTHON_IMAGE" ]] || printf 'MQKIT_STANDIN_PYTHON_IMAGE=%s\n' "$PYTHON_IMAGE"
printf 'MQKIT_STANDIN_RABBITMQ_VERSION=%s\nMQKIT_STANDIN_MOSQUITTO_VERSION=%s\n' \
    "$RABBITMQ_VERSION" "$MOSQUITTO_VERSION"
