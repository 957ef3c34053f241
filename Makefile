# Everything a newcomer needs: `make run` to see the service, `make test` for the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

# Local development defaults; a real deployment sets these in the environment.
export DEBUG ?= 1
export PORT ?= 8000

.PHONY: help venv infra infra-stop infra-status migrate topics static setup run test lint bench clean

help:
	@echo "make run         start PostgreSQL, Kafka, the web app and a worker"
	@echo "make test        same set-up, then ruff and the whole pytest suite"
	@echo "make bench       pickup latency, throughput and API benchmarks"
	@echo "make infra       start PostgreSQL and Kafka only (infra-stop stops them)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

infra:
	@bash infra/postgres.sh start
	@bash infra/kafka.sh start

infra-stop:
	@bash infra/kafka.sh stop
	@bash infra/postgres.sh stop

infra-status:
	@bash infra/postgres.sh status && bash infra/kafka.sh status

migrate: venv infra
	$(PY) manage.py migrate --noinput

topics: venv infra
	$(PY) manage.py ensure_topics

static: venv
	$(PY) manage.py collectstatic --noinput --verbosity 0

setup: venv infra migrate topics static

run: setup
	@bash scripts/run.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy config evaluations queueing bench

test: venv infra lint static
	bash scripts/install-test-tools.sh
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	bash scripts/install-bench-tools.sh
	$(PY) -m bench $(BENCH_ARGS)

clean: infra-stop
	rm -rf .local
