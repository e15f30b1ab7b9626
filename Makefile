# waitwise: every developer and CI task goes through this file.  `make help` lists the targets.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install postgres chromium fmt lint typecheck unit e2e check test demo bench clean

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=python3)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install waitwise (editable) with its test extras

postgres: $(STAMP) ## Install Debian's PostgreSQL server if missing (apt, as root or sudo -n); the e2e suite starts its own
	$(BIN)/python -m devtools.postgres install

chromium: $(STAMP) ## Install Debian's Chromium if missing (apt, as root or sudo -n); the browser tests open the report in it
	$(BIN)/python -m devtools.chromium install

fmt: $(STAMP) ## Format and auto-fix the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy (strict for triggers/, operators/, dags/)
	@mkdir -p .typecheck/waitwise
	@ln -sfn ../../triggers .typecheck/waitwise/triggers
	@ln -sfn ../../operators .typecheck/waitwise/operators
	$(BIN)/mypy -p waitwise.triggers -p waitwise.operators
	$(BIN)/mypy dags devtools tests

unit: $(STAMP) ## Unit and trigger tests only (no real Airflow)
	$(BIN)/pytest -m "not e2e" $(PYTEST_ARGS)

e2e: $(STAMP) postgres chromium ## End-to-end tests: a real Airflow started by the suite (SQLite and PostgreSQL), the report in headless Chromium
	$(BIN)/pytest -m e2e $(PYTEST_ARGS)

check: lint typecheck unit ## Fast gate before a push: lint, types and every test without a real Airflow

test: lint typecheck $(STAMP) postgres chromium ## Lint, type-check and run every test, unit and end-to-end
	$(BIN)/pytest $(PYTEST_ARGS)

demo: $(STAMP) ## Start a real local Airflow, run the example DAGs, print what happened
	$(BIN)/python -m devtools.demo

bench: $(STAMP) ## Run the benchmarks and print tables against baselines measured in the same run
	$(BIN)/python -m devtools.benchmarks $(BENCH_ARGS)

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
