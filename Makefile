# Entry points (see README.md):
#   make run    set up .venv and run the default workflow (offline semi-synthetic benchmark)
#   make test   set up .venv and run the linters and the test suite
#   make slurm-test  the workflow on a local single-node SLURM cluster (root; .ci/slurm/run.sh)
# Python 3.12+ is required. PYTHON may name any 3.12+ interpreter; where `python3.12` is a pyenv
# shim without a selected 3.12, the newest installed pyenv 3.12.x is used.

PYTHON ?= python3.12
CORES ?= 2
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup run test slurm-test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@if ! $(PYTHON) -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then \
	  v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$$' | tail -n 1); \
	  if [ -z "$$v" ]; then echo "error: Python 3.12+ not found; set PYTHON=/path/to/python3.12" >&2; exit 1; fi; \
	  echo "using pyenv Python $$v"; PYENV_VERSION=$$v $(PYTHON) -m venv $(VENV); \
	else $(PYTHON) -m venv $(VENV); fi
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests workflow/scripts bench
	$(VENV)/bin/ruff format --check src tests workflow/scripts bench
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules

test: lint
	$(VENV)/bin/pytest

slurm-test: $(STAMP)
	.ci/slurm/run.sh

clean:
	rm -rf $(VENV) .snakemake results
