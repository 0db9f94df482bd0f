# mediaflow: `make run` runs the pipeline, `make test` runs the test suite.
# Both install what they need (virtualenv, jars) and start what they need
# (Kafka, S3Proxy, PostgreSQL for the tests) on a fresh machine, from a clone
# anywhere (a private home, a path with spaces), as root or as a user.

SHELL := /bin/bash
PYTHON_BIN ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MEDIAFLOW := $(VENV)/bin/mediaflow
PYTEST_ARGS ?=

# Demo tenants and secrets for the local stack only (never production values).
-include deploy/local.env

# The local stack's ports (deploy/stack.sh and deploy/postgres.sh read the same
# variables; set them to run a second stack beside another one). The roles and
# the tests are pointed at them.
MEDIAFLOW_KAFKA_PORT ?= 9092
MEDIAFLOW_S3_PORT ?= 9000
MEDIAFLOW_PG_PORT ?= 55432
MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(MEDIAFLOW_KAFKA_PORT)
MEDIAFLOW_S3_ENDPOINT_URL ?= http://127.0.0.1:$(MEDIAFLOW_S3_PORT)
# The one place the tests learn where PostgreSQL is (`make test-unit` empties it).
MEDIAFLOW_TEST_PG_URL ?= postgresql://postgres@127.0.0.1:$(MEDIAFLOW_PG_PORT)/mediaflow
export

.PHONY: help venv run setup test test-unit screenshots lint stack-up stack-down stack-status stack-clean \
        pg-up pg-down topics storage demo bench bench-tools chaos deploy-check clean \
        cluster-up cluster-down

help:
	@echo "make run        start the local stack and every pipeline role (Ctrl-C stops)"
	@echo "make test       start the stack and PostgreSQL, run the whole test suite, stop what it started"
	@echo "make test-unit  unit tests only (no services needed)"
	@echo "make deploy-check  helm lint + template, chart and compose checks (builds Helm once, ~3-4 min)"
	@echo "make screenshots  the dashboard screenshots in docs/img/ (headless chromium)"
	@echo "make lint       ruff"
	@echo "make demo       simulated providers -> whole pipeline -> summary (exit 0 = nothing lost)"
	@echo "make bench      benchmarks side by side with their baselines -> bench/results/"
	@echo "make chaos      the long zero-loss chaos run (three-node cluster, brokers killed)"
	@echo "make cluster-up | cluster-down  three Kafka nodes (KRaft) on 29092/29192/29292"
	@echo "make stack-up | stack-down | stack-status | stack-clean | pg-up | pg-down"
	@echo "  (stack-down and stack-clean include PostgreSQL)"

# The virtualenv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || deploy/venv.sh $(PYTHON_BIN) $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	@touch $@

venv: $(VENV)/.installed

# "$$PWD/...", not $(abspath ...): make splits a path with spaces into words.
stack-up: venv
	PYTHON="$$PWD/$(PY)" deploy/stack.sh up

stack-down:
	deploy/stack.sh down
	deploy/postgres.sh down

stack-status:
	deploy/stack.sh status; rc=$$?; deploy/postgres.sh status || rc=1; exit $$rc

stack-clean:
	deploy/stack.sh clean
	deploy/postgres.sh clean

pg-up:
	deploy/postgres.sh up

pg-down:
	deploy/postgres.sh down

topics: stack-up
	$(MEDIAFLOW) topics apply

storage: stack-up
	$(MEDIAFLOW) storage init

setup: topics storage

run: setup
	$(MEDIAFLOW) run all

# with-stack.sh starts what is not running and, pass or fail, stops what it started.
# deploy/browser.sh: Debian's chromium for tests/browser (apt, as root, only when missing).
test: venv
	MEDIAFLOW_CHROMIUM="$$(deploy/browser.sh)" PYTHON="$$PWD/$(PY)" \
		deploy/with-stack.sh --pg -- $(PY) -m pytest -q $(PYTEST_ARGS)

test-unit: venv
	MEDIAFLOW_TEST_PG_URL= $(PY) -m pytest -q tests/unit $(PYTEST_ARGS); rc=$$?; \
	echo "test-unit: no service was started or used (Kafka, S3 and PostgreSQL tests run in make test)"; \
	exit $$rc

# Helm is built once from the Go module proxy (cached under .stack/tools/), then
# the chart is linted and rendered, and the rendered manifests and the compose
# file are checked. Not part of `make test`: the first Helm build takes ~3-4 min.
deploy-check: venv
	deploy/helm.sh lint --strict deploy/helm/mediaflow
	deploy/helm.sh template mediaflow deploy/helm/mediaflow >/dev/null
	deploy/compose-config.sh
	$(PY) -m pytest -q tests/deploy/test_helm_chart.py tests/deploy/test_compose.py

# The dashboard's screenshots in docs/img/ (the README shows them), from the browser test.
screenshots: venv
	MEDIAFLOW_SCREENSHOT_DIR="$$PWD/docs/img" MEDIAFLOW_CHROMIUM="$$(deploy/browser.sh)" \
		PYTHON="$$PWD/$(PY)" deploy/with-stack.sh -- $(PY) -m pytest -q tests/browser

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: setup
	$(PY) -m simulator.demo

bench: setup bench-tools
	$(PY) -m bench

# wrk: the webhook bench's second load generator (C: it does not cap the no-op handler).
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		echo "installing Debian's wrk package (once)..." && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
		echo "wrk is not installed (apt-get install wrk): the webhook bench runs without it"

# Three KRaft nodes, each a broker and a controller voter (deploy/cluster.sh).
# Point the pipeline at it with MEDIAFLOW_KAFKA_BOOTSTRAP_SERVERS=$$(deploy/cluster.sh
# bootstrap) and MEDIAFLOW_TOPICS_PROFILE=cluster (replication 3, min.insync 2).
cluster-up: venv
	PYTHON="$$PWD/$(PY)" deploy/cluster.sh up

cluster-down:
	deploy/cluster.sh down

# On the cluster (started if needed, stopped after if this run started it) and S3Proxy.
chaos: venv
	PYTHON="$$PWD/$(PY)" deploy/stack.sh up s3
	@up=0; PYTHON="$$PWD/$(PY)" deploy/cluster.sh status >/dev/null 2>&1 && up=1; \
	$(PY) -m tests.chaos.run --webhooks 5000; rc=$$?; \
	[ $$up = 1 ] || deploy/cluster.sh down; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
