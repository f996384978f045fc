# Entry points (see README.md):
#   make run    set up .venv and run the default workflow (offline semi-synthetic benchmark)
#   make test   set up .venv and run the linters and the test suite (TEST_WORKERS=2 workers)
#   make slurm-test  the workflow on a local single-node SLURM cluster (root; .ci/slurm/run.sh)
#   make lock   refresh requirements.lock and envs/*.yaml after a change of pyproject.toml's
#               dependencies (needs uv, https://docs.astral.sh/uv/, and PyPI; UV=/path/to/uv).
#               Locked versions are kept where pyproject.toml still allows them;
#               `make lock UPGRADE=1` moves every package to its newest allowed release.
# Python 3.12+ is required. PYTHON may name any 3.12+ interpreter; where `python3.12` is a pyenv
# shim without a selected 3.12, the newest installed pyenv 3.12.x is used.
#
# `make setup` (and so run and test) installs requirements.lock into .venv: every package of the
# runtime dependencies and of the `test` extra, pinned for Python 3.12 on Linux x86_64, with the
# sha256 hashes of PyPI's files, which pip checks (--require-hashes). Then the project itself,
# editable and without dependencies. It runs again when requirements.lock or pyproject.toml
# changes; pip adds and replaces packages but removes none (`make clean setup` for an exact copy).

PYTHON ?= python3.12
CORES ?= 2
# pytest workers of `make test` (pytest-xdist; each test file on one worker; 0: no workers)
TEST_WORKERS ?= 2
VENV := .venv
STAMP := $(VENV)/.installed
LOCK := requirements.lock
UV ?= uv
UPGRADE ?=

.PHONY: setup run test slurm-test lint lock clean

setup: $(STAMP)

$(VENV)/bin/python:
	@if ! $(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then \
	  v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$$' | tail -n 1); \
	  if [ -z "$$v" ]; then echo "error: Python 3.12+ not found; set PYTHON=/path/to/python3.12" >&2; exit 1; fi; \
	  echo "using pyenv Python $$v"; PYENV_VERSION=$$v $(PYTHON) -m venv $(VENV); \
	else $(PYTHON) -m venv $(VENV); fi

$(STAMP): $(LOCK) pyproject.toml | $(VENV)/bin/python
	@echo "installing $(LOCK) into $(VENV) (pinned and hash-checked; a minute or two the first time)"
	$(VENV)/bin/python -m pip install --require-hashes --progress-bar on -r $(LOCK)
	$(VENV)/bin/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

lock: | $(VENV)/bin/python
	@command -v $(UV) >/dev/null 2>&1 || { echo "error: make lock needs uv: pip install uv, or UV=/path/to/uv" >&2; exit 1; }
	$(UV) pip compile pyproject.toml --extra test --generate-hashes \
	  --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade) --output-file $(LOCK) >/dev/null
	$(VENV)/bin/python tools/make_envs.py

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests workflow/scripts bench tools
	$(VENV)/bin/ruff format --check src tests workflow/scripts bench tools
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules
	$(VENV)/bin/snakemake --lint

test: lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

slurm-test: $(STAMP)
	.ci/slurm/run.sh

clean:
	rm -rf $(VENV) .snakemake results
