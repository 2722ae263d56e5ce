# The platform's everyday commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PYTEST_ARGS ?=

.PHONY: help install run test lint fmt bench

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

bench: install ## Benchmarks (wrk, HAProxy, nginx on loopback): a Markdown report under bench/results/
	$(UV) run --frozen python -m tests.perf $(BENCH)

fmt: install ## Format and autofix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

# Kubernetes and containers. The namespace and release are fixed by k8s/ and
# skaffold.yaml; BASE_IMAGE is the Python image the Dockerfiles start from.
NAMESPACE ?= platform
BASE_IMAGE ?= python:3.11-slim-bookworm

.PHONY: cluster dev deploy port-forward test-images test-cluster

cluster: ## Create the kind cluster "platform" from k8s/kind-config.yaml
	@kind get clusters 2>/dev/null | grep -qx platform \
	  || kind create cluster --config k8s/kind-config.yaml
	kubectl config use-context kind-platform

dev: ## skaffold dev: build, deploy with Helm, forward the gateway to :8080
	skaffold dev --port-forward

deploy: ## Build the images, load them into the cluster, helm upgrade --install the umbrella
	BASE_IMAGE=$(BASE_IMAGE) NAMESPACE=$(NAMESPACE) ./k8s/deploy.sh

port-forward: ## Forward http://localhost:8080 to the gateway Service (no ingress needed)
	kubectl -n $(NAMESPACE) port-forward service/gateway 8080:8080

test-images: install ## Build the three images and run them as the cluster would (Docker)
	BASE_IMAGE=$(BASE_IMAGE) $(UV) run --frozen pytest -m images tests/images $(PYTEST_ARGS)

test-cluster: install ## Token and order flow plus helm test against the current kube context
	NAMESPACE=$(NAMESPACE) $(UV) run --frozen pytest -m cluster tests/cluster $(PYTEST_ARGS)
