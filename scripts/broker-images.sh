#!/usr/bin/env bash
# Make sure the docker-backend tests have broker images, and print the `export` lines that
# point the tests at them (stdout is meant for `eval`; progress goes to stderr).
#   - the official images mqkit pins, when present or pullable;
#   - else local stand-ins built by docker/standin/build.sh (no registry needed).
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
echo "export MQKIT_TEST_RABBITMQ_IMAGE='$rabbit' MQKIT_TEST_MOSQUITTO_IMAGE='$mosq'"
