#!/usr/bin/env bash
# The whole test suite: lint, unit, integration (real brokers), docker backend, labs.
# Called by `make test` (and so by .ci/run). In CI (CI=true) a missing service fails the
# run instead of skipping its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"

echo "== lint"
ruff check mqkit tests benchmarks

echo "== docker engine and broker images"
# A Docker Engine (started here when we are root and none runs) and broker images: the
# official ones where a registry answers, locally built stand-ins where none does.
if bash scripts/docker-engine.sh >&2; then
  eval "$(bash scripts/broker-images.sh)"
else
  echo "no Docker engine: docker-backend tests will skip (or fail in CI)"
fi

echo "== docker compose (validates the compose files)"
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1 \
   && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y -qq docker-compose >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null 2>&1; } \
    || echo "could not install docker-compose; compose validation will skip (or fail in CI)"
fi

echo "== chromium (the browser test drives Debian's chromium through Playwright)"
# Never `playwright install`: it downloads a browser, which this network refuses.
if ! [ -x /usr/bin/chromium ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "could not install chromium; the browser test will skip (or fail in CI)"
fi

echo "== labs: generated notebooks match their sources"
if [ -d labs/_src ]; then
  mqkit build-labs --check
fi

echo "== tests (unit, integration, docker, labs under nbval)"
exec python -m pytest "$@"
