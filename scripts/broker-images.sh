#!/usr/bin/env bash
# Make sure the docker-backend tests have broker images, and print the `export` lines that
# point the tests at them (stdout is meant for `eval`; progress goes to stderr).
#   - the official images mqkit pins, when present or pullable;
#   - else local stand-ins built by docker/standin/build.sh (no registry needed).
# The compose example's test also needs a Python base for its producer and consumer images:
# the one its Dockerfiles name (ARG BASE), else the python stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "broker-images: $*" >&2; }

read -r rabbit mosq < <(python -c \
  'from mqkit.config import Settings as S; s=S.from_env(); print(s.rabbitmq_image, s.mosquitto_image)')

have() { docker image inspect "$1" >/dev/null 2>&1; }
pull() { timeout 600 docker pull -q "$1" >/dev/null 2>&1; }

if { have "$rabbit" || pull "$rabbit"; } && { have "$mosq" || pull "$mosq"; }; then
  say "using the official images $rabbit and $mosq"
else
  say "official images unavailable (no registry?): using local stand-ins"
  if ! command -v debootstrap >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    say "installing debootstrap"
    (apt-get install -y -qq debootstrap || { apt-get update -qq && apt-get install -y -qq debootstrap; }) >&2
  fi
  eval "$(bash docker/standin/build.sh 2>&2 | grep '^MQKIT_STANDIN_' )"
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
echo "export MQKIT_TEST_RABBITMQ_IMAGE='$rabbit' MQKIT_TEST_MOSQUITTO_IMAGE='$mosq'" \
  "MQKIT_TEST_PYTHON_IMAGE='$python_base'"
