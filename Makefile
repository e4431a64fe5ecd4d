# The two set-up commands of the README:
#   make lab    start the brokers and JupyterLab on labs/
#   make test   run the whole test suite (what CI runs)
# and, when you want them alone:
#   make test-browser      the browser tests (JupyterLab in headless Chromium)
#   make test-browser-all  Run All on every student and solution notebook in the browser
#   make test-sandbox-docker-all  every hostile submission in the docker sandbox (CI: a subset)
VENV ?= .venv
PYTHON ?= python3

.PHONY: lab test test-browser test-browser-all test-sandbox-docker-all venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

lab: venv
	bash scripts/ensure-brokers.sh
	$(VENV)/bin/mqkit lab

test: venv
	bash scripts/ensure-brokers.sh
	VENV=$(VENV) bash scripts/test.sh

# make test-matrix: every line-parametrized test (labs, routing, faults, grading, browser,
# behaviour checks, docker backend) on every broker line in Docker (RabbitMQ 4.3, 4.0, 3.10
# with Mosquitto 2.1, 2.0.21, 2.0.11); make test runs them on the process backend and the
# newest line (some on 4.0 too); see tests/lines.py and scripts/test-matrix.sh.
.PHONY: test-matrix
test-matrix: venv
	VENV=$(VENV) bash scripts/test-matrix.sh

test-browser: venv
	bash scripts/ensure-brokers.sh
	$(VENV)/bin/python -m pytest -m browser tests/browser

test-browser-all: venv
	bash scripts/ensure-brokers.sh
	MQKIT_TEST_BROWSER_ALL=1 $(VENV)/bin/python -m pytest tests/browser/test_labs_in_browser.py

test-sandbox-docker-all: venv
	bash scripts/ensure-brokers.sh
	MQKIT_TEST_SANDBOX_DOCKER_ALL=1 $(VENV)/bin/python -m pytest tests/grading/test_sandbox_docker.py
