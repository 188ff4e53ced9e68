# Two commands do all set-up: `make demo` runs the product, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PORT ?= 8000
DEMO_EVENTS ?= 20000

# Use the local PostgreSQL / Redis for tests when they answer and nothing else was asked for.
LOCAL_PG := postgres://postgres@127.0.0.1:5432/analytics
LOCAL_REDIS := redis://127.0.0.1:6379/0
TEST_DATABASE_URL := $(or $(DATABASE_URL),$(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo $(LOCAL_PG)))
TEST_REDIS_URL := $(or $(REDIS_URL),$(shell (redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG) && echo $(LOCAL_REDIS)))

.PHONY: help demo up test test-faults test-cluster cluster-up cluster-down cluster-soak soak test-unit test-integration test-browser quality-check lint format bench bench-dashboard worker beat clean

help:
	@echo "make demo   - install, migrate, demo login, sample data, serve on :$(PORT)"
	@echo "make test   - run the whole test suite"
	@echo "make lint   - ruff check, format check, import contracts (lint-imports)"
	@echo "make bench  - ingestion benchmark (needs PostgreSQL)"
	@echo "make test-faults - the fault suite (real stack, proxies, faults; slow)"
	@echo "make cluster-up / cluster-down - the namespace cluster (root; scale/cluster.sh)"
	@echo "make cluster-soak - the cluster soak with its three losses (root; scale/soak.py)"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate requirements/base.txt requirements/dev.txt requirements/export.txt
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

install: $(VENV)/.installed

.env:
	@echo "Writing a development .env (ENVIRONMENT=development)"
	@printf 'ENVIRONMENT=development\nSECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(40))')" > .env

demo: install .env
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup --events $(DEMO_EVENTS) --port $(PORT)
	@echo "Starting the in-process scheduler (rollups, quality checks) and the server on :$(PORT)"
	@$(PY) manage.py run_scheduler --tick 5 > scheduler.log 2>&1 & sched=$$!; \
	  trap 'kill $$sched 2>/dev/null' EXIT INT TERM; \
	  $(PY) manage.py runserver 0.0.0.0:$(PORT)

up: demo

test: install
	@echo "Tests on database: $(or $(TEST_DATABASE_URL),SQLite)  broker: $(or $(TEST_REDIS_URL),none (eager))"
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

# Fault suite (issue 14): the real stack behind proxies it kills, stalls and black-holes.
# FAULTS_ARGS="-k killed" picks scenarios. `make soak SOAK_ARGS="--minutes 1"` runs the soak.
test-faults: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -m "faults or not faults" tests/faults $(FAULTS_ARGS) $(PYTEST_ARGS)

soak: install
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) benchmarks/soak.py $(SOAK_ARGS)

# The namespace cluster (issue 15, ADR 0023): HAProxy, two web and two worker hosts,
# PostgreSQL with pg_auto_failover, PgBouncer, Redis. Root. CLUSTER_SOAK_ARGS="--minutes 5".
cluster-up: install
	scale/cluster.sh up

cluster-down:
	scale/cluster.sh down

cluster-soak: install
	$(PY) scale/soak.py --up --down $(CLUSTER_SOAK_ARGS)

test-cluster: install
	$(BIN)/pytest -m cluster tests/cluster $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-browser: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest tests/browser $(PYTEST_ARGS)

quality-check: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest tests/data_quality $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(PY) benchmarks/ingest.py $(BENCH_ARGS)

bench-validation: install
	ENVIRONMENT=development $(PY) benchmarks/validation.py $(BENCH_ARGS)

bench-dashboard: install
	$(PY) benchmarks/dashboard.py

worker: install
	$(BIN)/celery -A analytics_site worker --loglevel=INFO

beat: install
	$(BIN)/celery -A analytics_site beat --loglevel=INFO

clean:
	rm -rf $(VENV) staticfiles .pytest_cache db.sqlite3* test_db.sqlite3*
