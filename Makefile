# The two commands a new user needs: `make demo` and `make test`. Each does all set-up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sdk/pyproject.toml | sha1sum | cut -c1-12)

.PHONY: setup demo test test-fast test-unit lint typecheck bench postgres serve clean

$(STAMP): pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: 2.13.0 is the local CPU wheel; any other spec may pull CUDA builds.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# The SDK and its `lrlab` command (the server adds `serve` and `db` to it).
	$(BIN)/pip install --quiet -e "sdk[pandas,parquet]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

postgres:
	@scripts/ensure-postgres.sh

demo: setup
	$(BIN)/python scripts/demo.py

# Lint and types first: a red lint fails in seconds, not after the suite.
test: lint typecheck postgres
	$(BIN)/pytest -q

# Everything but the tests that need Ray, start processes or take more than a few seconds.
test-fast: setup postgres
	$(BIN)/pytest -q -m "not ray and not subprocess and not slow"

test-unit: setup
	$(BIN)/pytest -q tests/unit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Every package: mypy's files list in pyproject's [tool.mypy] names them.
typecheck: setup
	$(BIN)/mypy

bench: setup postgres
	$(BIN)/python bench/ingest.py

serve: setup
	$(BIN)/lrlab-server serve

clean:
	rm -rf $(VENV) .lrlab .pytest_cache .mypy_cache .ruff_cache *.egg-info
