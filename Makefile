# One-command set-up: `make lab` opens the course, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP  := $(VENV)/.installed-test
BENCH_STAMP := $(VENV)/.installed-bench
# Jupyter refuses to run as root unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: lab test bench test-e2e labs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "Python 3.11 or newer is needed; $(PYTHON) is %d.%d. Run: make PYTHON=python3.11 ..." % v[:2])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

# Test-only (pytest, nbval, playwright, hypothesis, Dask's distributed) and bench-only (Ciw, distributed)
# extras: never by `make lab`.
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
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
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

labs: $(STAMP)
	$(BIN)/python tools/generate_labs.py

clean:
	rm -rf $(VENV) e2e-screenshots
