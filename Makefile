# One-command set-up: `make lab` opens the course, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
MUTATE_STAMP := $(VENV)/.installed-mutate
# Exact versions of everything installed (the notebooks assert numbers from seeded runs, so a newer
# simpy or numpy next year must not change them): refreshed on purpose by `make lock`.
LOCK := constraints.txt
PIP  := $(BIN)/python -m pip install --quiet -c $(LOCK)
# Jupyter refuses to run as root unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench mutate test-e2e labs lock clean

# A .venv made in another folder (a moved or copied checkout) has scripts that point at the old path:
# remove it, so that the rules below build it again here.
ifneq ($(wildcard $(BIN)/pip),)
ifneq ($(shell head -1 $(BIN)/pip),\#!$(abspath $(BIN))/python)
$(info $(VENV) was made in another folder: rebuilding it)
$(shell rm -rf $(VENV))
endif
endif

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "Python 3.11 or newer is needed; $(PYTHON) is %d.%d. Run: make PYTHON=python3.11 ..." % v[:2])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(PIP) -e .
	touch $(STAMP)

# Test-only (pytest, nbval, playwright, hypothesis, Dask's distributed) and bench-only (Ciw, distributed)
# extras: never by `make lab`.
$(TEST_STAMP): $(STAMP)
	$(PIP) -e '.[test]'
	touch $(TEST_STAMP)

# The whole course in the file browser (root = this folder), opened on the first notebook.
lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 $(ROOT_FLAG) --ServerApp.root_dir=. \
		--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests notebooks labs/solutions --ignore=tests/e2e --nbval-lax --nbval-current-env

# Runs every notebook in headless Chromium and moves a slider per dashboard (tests/e2e/run_e2e.py).
test-e2e: $(TEST_STAMP)
	$(BIN)/python tests/e2e/run_e2e.py

$(BENCH_STAMP): $(TEST_STAMP)
	$(PIP) -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

# Mutation testing of core, policies, metrics and the simulator's service and client (tools/mutate.py):
# about three hours for all four groups on 2 cores, not part of `make test` or CI. One group:
# make mutate ARGS="--group policies" (about 36 minutes).
$(MUTATE_STAMP): $(TEST_STAMP)
	$(PIP) -e '.[test,mutate]'
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	$(BIN)/python tools/mutate.py $(ARGS)

labs: $(STAMP)
	$(BIN)/python tools/generate_labs.py

# Refresh the lock on purpose: the newest versions the floors in pyproject.toml allow, in a fresh
# environment; then the whole suite on them. environment.yml pins the same versions
# (tests/test_environment_sync.py says which to change).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[test,bench]'
	{ echo "# Exact versions for make lab / test / bench (pip constraints). Refresh with: make lock"; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > $(LOCK)
	rm -rf .venv-lock
	$(MAKE) test

clean:
	rm -rf $(VENV) e2e-screenshots
