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
if bash scripts/docker-engine.sh; then
  eval "$(bash scripts/broker-images.sh)"
else
  echo "no Docker engine: docker-backend tests will skip (or fail in CI)"
fi

echo "== tests"
exec python -m pytest "$@"
