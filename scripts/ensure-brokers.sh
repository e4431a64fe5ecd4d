#!/usr/bin/env bash
# Make sure this machine can run the brokers as processes (the process backend): install
# Debian's rabbitmq-server and mosquitto when they are missing and we may (root + apt).
# Never fatal: Docker or an external broker may still do.
set -uo pipefail
has_mosquitto() { command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; }
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && has_mosquitto; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-brokers: installing rabbitmq-server and mosquitto (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq rabbitmq-server mosquitto \
    || { apt-get update -qq && apt-get install -y -qq rabbitmq-server mosquitto; }; } >&2 \
    || echo "ensure-brokers: install failed; mqkit will try Docker" >&2
else
  echo "ensure-brokers: rabbitmq-server/mosquitto not installed; mqkit will use Docker if it" \
       "runs (or install them: sudo apt-get install rabbitmq-server mosquitto)" >&2
fi
exit 0
