#!/usr/bin/env bash
# Make sure the docker-backend tests have broker images, and print the `export` lines that
# point the tests at them (stdout is meant for `eval`; progress goes to stderr).
#   - the official images mqkit pins, when present or pullable;
#   - else local stand-ins of the same line built by docker/standin/build.sh from Debian sid
#     (RabbitMQ 4.3, Mosquitto 2.1; no registry needed).
# The compose example's test also needs a Python base for its producer and consumer images:
# the one its Dockerfiles name (ARG BASE), else the python stand-in.
#
# Broker lines (tests/lines.py): MQKIT_TEST_BROKER_LINES names the newest line first,
# RabbitMQ 4.3 / Mosquitto 2.1 (the pins' line, Debian sid), then 4.0 / 2.0.21 (trixie);
# with MQKIT_TEST_MATRIX=1 also 3.10 / 2.0.11 (bookworm) in Docker. Each line is the official
# images of that line where they are here or a registry answers, else its stand-ins (built
# once, about a minute per suite, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "broker-images: $*" >&2; }

read -r rabbit mosq < <(python -c \
  'from mqkit.config import Settings as S; s=S.from_env(); print(s.rabbitmq_image, s.mosquitto_image)')

have() { docker image inspect "$1" >/dev/null 2>&1; }
pull() { timeout 600 docker pull -q "$1" >/dev/null 2>&1; }

ensure_debootstrap() {
  if ! command -v debootstrap >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    say "installing debootstrap"
    (apt-get install -y -qq debootstrap || { apt-get update -qq && apt-get install -y -qq debootstrap; }) >&2
  fi
}

registry=no
if { have "$rabbit" || pull "$rabbit"; } && { have "$mosq" || pull "$mosq"; }; then
  say "using the official images $rabbit and $mosq"
  registry=yes
else
  say "official images unavailable (no registry?): using local stand-ins"
  ensure_debootstrap
  eval "$(MQKIT_STANDIN_SUITE=sid bash docker/standin/build.sh 2>&2 | grep '^MQKIT_STANDIN_' )"
  rabbit="$MQKIT_STANDIN_RABBITMQ_IMAGE"
  mosq="$MQKIT_STANDIN_MOSQUITTO_IMAGE"
fi

python_base="$(sed -n 's/^ARG BASE=//p' docker/mqtt-python/Dockerfile-consumer)"
if [ -n "${MQKIT_STANDIN_PYTHON_IMAGE:-}" ]; then
  python_base="$MQKIT_STANDIN_PYTHON_IMAGE"
elif ! { have "$python_base" || pull "$python_base"; }; then
  say "$python_base unavailable: using the python stand-in"
  eval "$(bash docker/standin/build.sh 2>&2 | grep '^MQKIT_STANDIN_' )"
  python_base="${MQKIT_STANDIN_PYTHON_IMAGE:-$python_base}"
fi

# line SUITE RABBITMQ_LINE/MOSQUITTO_LINE OFFICIAL_RABBITMQ OFFICIAL_MOSQUITTO: one entry of
# MQKIT_TEST_BROKER_LINES. The official tags are not verified here (no registry answers).
line() {
  local suite="$1" versions="$2" official_rabbit="$3" official_mosq="$4"
  if { have "$official_rabbit" || { [ "$registry" = yes ] && pull "$official_rabbit"; }; } \
     && { have "$official_mosq" || { [ "$registry" = yes ] && pull "$official_mosq"; }; }; then
    echo "$versions=$official_rabbit,$official_mosq"
    return
  fi
  ensure_debootstrap
  local out
  out="$(MQKIT_STANDIN_SUITE="$suite" bash docker/standin/build.sh)" \
    || { say "no $suite stand-ins: the $versions line is missing"; return 1; }
  echo "$versions=$(sed -n 's/^MQKIT_STANDIN_RABBITMQ_IMAGE=//p' <<<"$out"),$(
    sed -n 's/^MQKIT_STANDIN_MOSQUITTO_IMAGE=//p' <<<"$out")"
}
# A line that cannot be had (no root for debootstrap, say) is left out, not fatal: the other
# exports still hold, and its tests skip on a laptop and fail in CI (tests/helpers.require).
# The newest line is the pinned images themselves (official or their stand-ins, above).
lines="4.3/2.1=$rabbit,$mosq"
lines="$lines $(line trixie 4.0/2.0.21 rabbitmq:4.0-management eclipse-mosquitto:2.0.21 || true)"
if [ "${MQKIT_TEST_MATRIX:-0}" = 1 ]; then
  lines="$lines $(line bookworm 3.10/2.0.11 rabbitmq:3.10-management eclipse-mosquitto:2.0.11 || true)"
fi
lines="$(echo $lines)"  # no stray spaces
say "broker lines: $lines"

echo "export MQKIT_TEST_RABBITMQ_IMAGE='$rabbit' MQKIT_TEST_MOSQUITTO_IMAGE='$mosq'" \
  "MQKIT_TEST_PYTHON_IMAGE='$python_base' MQKIT_TEST_BROKER_LINES='$lines'"
