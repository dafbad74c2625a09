# The two quick-start commands (see README): `make up` and `make test`.
# Everything installs into .venv on first use; nothing else is needed on the machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

## Run the whole exchange with mock departments on http://127.0.0.1:8000 (embedded SQLite).
up: $(STAMP)
	$(BIN)/exchange up

## Run the test suite (PostgreSQL tests run when EXCHANGE_TEST_POSTGRES_URL is set).
test: $(STAMP)
	$(BIN)/python -m pytest

## Lint and type-check.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Run the benchmarks and rewrite bench/results/.
bench: $(STAMP)
	$(BIN)/python bench/catalog.py

clean:
	rm -rf $(VENV) .exchange .pytest_cache .mypy_cache .ruff_cache
