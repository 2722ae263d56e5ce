# The platform's everyday commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PYTEST_ARGS ?=

.PHONY: help install run test lint fmt

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: ## Install the workspace and its dev tools from the lock file
	@command -v $(UV) >/dev/null || pip install --quiet uv
	$(UV) sync --frozen

run: install ## Start identity, orders and the gateway on 8000/8001/8080 (Ctrl-C stops)
	@./scripts/run-local.sh

test: install ## Run every test (unit, integration, e2e, charts, images)
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check, mypy --strict
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy services tests conftest.py

fmt: install ## Format and autofix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .
