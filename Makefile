# The two quick-start commands (see README): `make up` and `make test`.
# Everything installs into .venv on first use; nothing else is needed on the machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Two stamps: `make up` needs only what running needs (the runtime dependencies);
# `make test`/`make lint` need the development tools too. Installing dev implies runtime.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
# What an install reads: a change to the compiled extension's source rebuilds it too (an
# editable install links the Python code but compiles the extension once, in place).
INSTALL_INPUTS := pyproject.toml setup.py src/exchange/departments/_kernels.c

.PHONY: up test lint bench clean

$(VENV)/bin/python:
	@echo "make: creating the virtual environment $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): $(INSTALL_INPUTS) | $(VENV)/bin/python
	@echo "make: installing the exchange and what it needs to run into $(VENV) (first run, about a minute)"
	@$(BIN)/python -m pip install --quiet -e .
	@touch $(RUNTIME_STAMP)

$(STAMP): $(INSTALL_INPUTS) | $(VENV)/bin/python
	@echo "make: installing the exchange with the development tools (tests, lint, Locust) into $(VENV)"
	@$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP) $(RUNTIME_STAMP)

## Run the whole exchange with mock departments on http://127.0.0.1:8000 (embedded SQLite).
up: $(RUNTIME_STAMP)
	$(BIN)/exchange up

## Run the test suite (PostgreSQL tests run when EXCHANGE_TEST_POSTGRES_URL is set).
# Two pytest-xdist workers, one per core of the 2-core CI machine; a test file runs whole in
# one worker (its module fixtures, such as a served exchange, are started once).
# TEST_WORKERS=0 runs in this process alone.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

## Lint and type-check (the package, then bench/); check the import layers (pyproject's
## [tool.importlinter]); lint the Dockerfile (hadolint fails on any finding not ignored inline).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy bench
	PYTHONPATH=src $(BIN)/lint-imports --no-cache
	$(BIN)/hadolint Dockerfile

## Run every benchmark (a couple of hours) and rewrite bench/results/; BENCH="broker soak" runs some.
bench: $(STAMP)
	$(BIN)/python bench/all.py $(if $(BENCH),--only $(BENCH))

clean:
	rm -rf $(VENV) .exchange .pytest_cache .mypy_cache .ruff_cache
