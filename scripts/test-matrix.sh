#!/usr/bin/env bash
# `make test-matrix`: the broker-version matrix (issue 14) that `make test` does not run.
#   - tests/docker/test_broker_versions.py on every line: RabbitMQ 4.3 / Mosquitto 2.1 (sid),
#     4.0 / 2.0.21 (trixie), 3.10 / 2.0.11 (bookworm);
#   - tests/docker/test_docker_backend.py with each line's images.
# Stand-ins are built once per suite (about a minute each on a fresh machine, then cached).
# Extra arguments go to every pytest run (for example --durations=10).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"

bash scripts/docker-engine.sh >&2
eval "$(MQKIT_TEST_MATRIX=1 bash scripts/broker-images.sh)"
export MQKIT_TEST_BROKER_LINES

echo "== behaviour checks on every line: $MQKIT_TEST_BROKER_LINES"
python -m pytest tests/docker/test_broker_versions.py "$@"

for entry in $MQKIT_TEST_BROKER_LINES; do
  images="${entry#*=}"
  echo "== docker backend on ${entry%%=*} (${images})"
  MQKIT_TEST_RABBITMQ_IMAGE="${images%%,*}" MQKIT_TEST_MOSQUITTO_IMAGE="${images#*,}" \
    python -m pytest tests/docker/test_docker_backend.py "$@"
done
