#!/usr/bin/env bash
# `make test-matrix`: everything that runs per broker line (tests/lines.py), on every line:
# RabbitMQ 4.3 / Mosquitto 2.1 (Debian sid), 4.0 / 2.0.21 (trixie) and 3.10 / 2.0.11
# (bookworm), each in Docker. `make test` runs the same tests on the process backend (3.10 /
# 2.0.11 of this machine) and the newest line, and the routing properties, behaviour checks
# and version-sensitive labs on 4.0 too; this runs the rest of the matrix:
#   - every lab notebook (student and solution) under nbval;
#   - the routing and topic-filter properties;
#   - the fault scenarios;
#   - the grading of labs 02 and 03 (scores equal to the process backend's), the hostile
#     submissions in the user sandbox, and a broker killed mid-grading;
#   - Run All of the labs with widgets in JupyterLab (headless Chromium);
#   - the behaviour checks of tests/docker/test_broker_versions.py;
#   - tests/docker/test_docker_backend.py with each line's images.
# Only the Docker-line cases run here (-m docker): the process backend's are make test's.
# Stand-ins are built once per suite (about a minute each on a fresh machine, then cached).
# Extra arguments go to every pytest run (for example --durations=10).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
export PATH="$PWD/$VENV/bin:$PATH"

bash scripts/docker-engine.sh >&2
eval "$(MQKIT_TEST_MATRIX=1 bash scripts/broker-images.sh)"
export MQKIT_TEST_MATRIX=1 MQKIT_TEST_BROKER_LINES

echo "== every line-parametrized test on every line: $MQKIT_TEST_BROKER_LINES"
python -m pytest -m docker tests/labs/test_notebooks.py \
  tests/integration/test_routing_vs_rabbitmq.py tests/integration/test_topic_filters_vs_mosquitto.py \
  tests/faults tests/grading/test_grader_lines.py tests/grading/test_sandbox.py \
  tests/grading/test_broker_death.py tests/browser/test_labs_in_browser.py \
  tests/docker/test_broker_versions.py "$@"

for entry in $MQKIT_TEST_BROKER_LINES; do
  images="${entry#*=}"
  echo "== docker backend on ${entry%%=*} (${images})"
  MQKIT_TEST_RABBITMQ_IMAGE="${images%%,*}" MQKIT_TEST_MOSQUITTO_IMAGE="${images#*,}" \
    python -m pytest tests/docker/test_docker_backend.py "$@"
done
