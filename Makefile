# The two set-up commands of the README:
#   make lab    start the brokers and JupyterLab on labs/
#   make test   run the whole test suite (what CI runs)
VENV ?= .venv
PYTHON ?= python3

.PHONY: lab test venv

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
