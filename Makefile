# Two commands do all the set-up on a fresh machine:
#   make serve   - create .venv, install CaseGraph, start the server on ./data (port 3300)
#   make test    - create .venv, install CaseGraph with its test tools, run the whole suite
# torch is installed first, pinned to the CPU build, so nothing pulls CUDA wheels.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.casegraph-installed

.PHONY: serve test install lint clean-data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/casegraph serve $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check app extractors graph_schema tests benchmarks

clean-data:
	rm -rf ./data
