# Sixfold: `make run` runs the whole pipeline on the embedded default; `make test` passes the
# tests against real services. Everything below installs what it needs on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CACHE ?= $(HOME)/.cache/sixfold
export CARGO_TARGET_DIR ?= $(CACHE)/target
TANSU := $(CACHE)/tansu/bin/tansu
VENV := $(CACHE)/venv
PY := $(VENV)/bin/python
SIXFOLD := $(CARGO_TARGET_DIR)/debug/sixfold
CONFIG ?= config/development.yaml

.PHONY: help
help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: run
run: deps build ## Run everything on the embedded default (broker, registry, Redis, SQLite, ingress, processors).
	$(SIXFOLD) --config $(CONFIG) run

# Tests get a broker of their own, started on an empty directory at every run.
TEST_BROKER := 127.0.0.1:19093
TEST_SERVICES := $(CURDIR)/var/test-services

.PHONY: test
test: deps build services-up ## Run every test against the real broker, Redis and store, and the console in Chromium.
	SIXFOLD_SERVICES_DIR=$(TEST_SERVICES) SIXFOLD_BROKER_PORT=19093 scripts/services.sh fresh-broker
	SIXFOLD__KAFKA__BROKERS=$(TEST_BROKER) cargo test --workspace
	SIXFOLD__KAFKA__BROKERS=$(TEST_BROKER) SIXFOLD_BIN=$(SIXFOLD) $(PY) -m pytest -q tests/python

.PHONY: e2e
e2e: deps build ## The end-to-end scenario alone (also part of make test): all six systems, kills and restarts.
	SIXFOLD_BIN=$(SIXFOLD) $(PY) -m pytest -q -s tests/python/test_e2e.py

DEPLOY_VENV := $(CACHE)/deploy-venv

.PHONY: console-test
console-test: deps build ## The console's browser tests alone (also part of make test); screenshots in var/console-test/artifacts.
	SIXFOLD_BIN=$(SIXFOLD) $(PY) -m pytest -q -s tests/python/test_console.py

.PHONY: deploy-check
deploy-check: $(DEPLOY_VENV)/bin/python ## Check deploy/ offline: manifests against the Kubernetes schemas, topics against topics.yaml, HPAs, compose.
	$(DEPLOY_VENV)/bin/python scripts/deploy_check.py

.PHONY: deploy-topics
deploy-topics: $(DEPLOY_VENV)/bin/python ## Regenerate deploy/k8s/kafka/topics.yaml and deploy/k8s/config/topics.yaml from topics.yaml.
	$(DEPLOY_VENV)/bin/python scripts/strimzi_topics.py -o deploy/k8s/kafka/topics.yaml
	cp topics.yaml deploy/k8s/config/topics.yaml

$(DEPLOY_VENV)/bin/python: tests/python/requirements-deploy.txt
	python3 -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install -q -r tests/python/requirements-deploy.txt
	touch $@

.PHONY: websocat
websocat: ## Install websocat (a WebSocket client for trying chat) into ~/.cache/sixfold/websocat/bin.
	@[ -x $(CACHE)/websocat/bin/websocat ] || CARGO_TARGET_DIR=$(CACHE)/websocat-build cargo install websocat --version 1.14.1 --locked --root $(CACHE)/websocat
	@echo "$(CACHE)/websocat/bin/websocat"

.PHONY: site
site: ## Serve the crawler's local test web site (4 hosts on 127.0.0.1:18300-18303) in the foreground.
	@mkdir -p var
	python3 tests/site/site.py --mode test --base-port 18300 --access-log var/site-access.log

.PHONY: bench
bench: deps services-up ## Measure against ceilings on this machine; prints a table, writes docs/benchmarks.md.
	@command -v wrk >/dev/null && command -v nginx >/dev/null && command -v taskset >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light util-linux >/dev/null)
	@[ -x $(CACHE)/oha/bin/oha ] || CARGO_TARGET_DIR=$(CACHE)/oha-build cargo install oha --version 1.16.0 --locked --root $(CACHE)/oha
	cargo build --release -p sixfold -p sixfold-tests --bin sixfold --bin notify-standins
	scripts/bench.sh

.PHONY: build
build: ## Build the sixfold binary and the test processors.
	cargo build --workspace --bins

.PHONY: lint
lint: ## rustfmt and clippy, warnings as errors.
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: deps
deps: system-deps $(TANSU) $(PY) ## Install the broker, redis-server, Chromium and the Python test clients (each once).

.PHONY: system-deps
# redis-server for the services; Chromium (and a font) for the console's browser tests.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "installing from Debian:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# tansu 0.6: an Apache-Kafka-protocol broker in Rust (see docs/broker.md). 9–17 min once.
$(TANSU):
	CARGO_TARGET_DIR=$(CACHE)/tansu-build cargo install tansu --version 0.6.0 --locked \
	  --features dynostore,libsql --root $(CACHE)/tansu
	rm -rf $(CACHE)/tansu-build

$(PY): tests/python/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/python/requirements.txt
	touch $(PY)

.PHONY: services-up
services-up: deps ## Start the broker, Redis and a 3-node Redis Cluster on loopback (reuses running ones).
	scripts/services.sh up
	scripts/redis-cluster.sh up

.PHONY: services-down
services-down: ## Stop what services-up and test started.
	scripts/redis-cluster.sh down
	scripts/services.sh down
	SIXFOLD_SERVICES_DIR=$(TEST_SERVICES) SIXFOLD_BROKER_PORT=19093 scripts/services.sh down

.PHONY: clean-data
clean-data: services-down ## Remove all local data (./var).
	rm -rf var
