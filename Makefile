# OpsConductor Event Engine. The two commands: `make run` and `make test`.
#
#   make install   .venv/ with the product and its dev tools (again only when setup.cfg changes)
#   make run       the all-in-one embedded mode (SQLite under ./var, in-process broker)
#   make test      RabbitMQ + PostgreSQL (started if needed), ruff, mypy, lint-imports, pytest
#   make lint      ruff, mypy and the import graph's contracts (lint-imports) only
#   make unit      the unit tests only (no services needed; PostgreSQL ones skip without it)
#   make bench     the webhook benchmark on the real stack (bench-receivers: syslog/SNMP)
#   make fuzz      the decoder fuzz tests (syslog, CEF/LEEF, SNMP) with many examples (FUZZ_EXAMPLES)
#   make requirements  requirements.txt: setup.cfg's runtime dependencies pinned by pip-compile (buildpacks, image)
#   make clean     remove .venv/ and build/lint caches (keeps ./var: the embedded database)
#   make distclean clean, and remove ./var (stops a private test PostgreSQL in var/pgdata first)
#
# Variables: PYTHON (the interpreter for the venv, >= 3.11; default python3),
# PYTEST_ARGS (e.g. make test PYTEST_ARGS='-k syslog -x'), RUN_ARGS, BENCH_ARGS, FUZZ_EXAMPLES (20000).
# RABBITMQ_URL, DATABASE_URL, CI and every other environment variable pass through.

SHELL := /bin/sh
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVICES_ENV := var/test-services.env
ENSURE_SERVICES := bash scripts/ensure-services.sh

PYTEST_ARGS ?=
RUN_ARGS ?=
BENCH_ARGS ?=
FUZZ_EXAMPLES ?= 20000
SCHEMATHESIS_EXAMPLES ?= 300

.PHONY: help install run test services lint unit bench bench-receivers fuzz requirements clean distclean

help:
	@sed -n 's/^#   //p' Makefile

install: $(STAMP)

# A venv with a working Python >= 3.11, made from $(PYTHON) when missing or broken; then pip and
# the project, editable, with the dev extras. The stamp makes a second run a no-op until the
# package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	@if ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	  if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	    echo "make install: Python >= 3.11 is needed; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." >&2; \
	    echo "make install: run e.g. 'make install PYTHON=python3.12'." >&2; \
	    exit 1; \
	  fi; \
	  echo "make install: creating $(VENV) with $$($(PYTHON) --version 2>&1)"; \
	  if ! $(PYTHON) -m venv --clear $(VENV); then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      echo "make install: installing Debian package python3-venv"; \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null 2>&1 \
	        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 \
	             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null; }; \
	      $(PYTHON) -m venv --clear $(VENV); \
	    else \
	      echo "make install: '$(PYTHON) -m venv' failed (Debian/Ubuntu: install python3-venv)." >&2; \
	      exit 1; \
	    fi; \
	  fi; \
	fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: install
	exec $(BIN)/opsconductor run $(RUN_ARGS)

# Starts what is missing and writes the URLs the tests use to $(SERVICES_ENV).
services: install
	@$(ENSURE_SERVICES) --env-file $(SERVICES_ENV)

lint: install
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app
	$(BIN)/lint-imports

# Sequenced in one recipe (not as prerequisites) so that `make -j` keeps the order:
# services, ruff, mypy, the import contracts, then pytest with the URLs ensure-services settled on.
test: install
	@$(ENSURE_SERVICES) --env-file $(SERVICES_ENV)
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app
	$(BIN)/lint-imports
	. ./$(SERVICES_ENV) && exec $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

unit: install
	$(BIN)/pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

# The CI run of these tests takes a few hundred examples a property; this one many more (about
# 6 minutes at the default), then schemathesis against the API with SCHEMATHESIS_EXAMPLES per
# operation and role (real gunicorn, RabbitMQ and PostgreSQL). Failing inputs are kept by
# hypothesis in .hypothesis/ and replayed first.
fuzz: install
	OPSCONDUCTOR_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -p no:cacheprovider tests/unit/test_fuzz_decoders.py $(PYTEST_ARGS)
	@$(ENSURE_SERVICES) --env-file $(SERVICES_ENV)
	. ./$(SERVICES_ENV) && SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) exec $(BIN)/pytest -p no:cacheprovider tests/integration/test_schemathesis.py $(PYTEST_ARGS)

bench: install
	@$(ENSURE_SERVICES) --bench --env-file $(SERVICES_ENV)
	. ./$(SERVICES_ENV) && exec $(BIN)/python bench/webhook.py $(BENCH_ARGS)

bench-receivers: install
	@$(ENSURE_SERVICES) --bench --env-file $(SERVICES_ENV)
	. ./$(SERVICES_ENV) && exec $(BIN)/python bench/receivers.py $(BENCH_ARGS)

# pip-compile in a throwaway venv (var/pip-tools), so .venv keeps its own versions. Pins already in
# requirements.txt are kept while setup.cfg allows them; add PIP_COMPILE_ARGS=--upgrade to refresh them all.
PIP_COMPILE_ARGS ?=
requirements:
	@[ -x var/pip-tools/bin/pip-compile ] || { $(PYTHON) -m venv var/pip-tools \
	  && var/pip-tools/bin/python -m pip install --quiet --disable-pip-version-check pip-tools; }
	var/pip-tools/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
	  $(PIP_COMPILE_ARGS) --output-file=requirements.txt setup.cfg

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache .import_linter_cache build dist $(SERVICES_ENV)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Stops the private PostgreSQL cluster ensure-services may have created in var/pgdata first.
distclean: clean
	@if [ -f var/pgdata/postmaster.pid ]; then \
	  pg_ctl=$$(command -v pg_ctl || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1); \
	  if [ -n "$$pg_ctl" ]; then "$$pg_ctl" -D var/pgdata -m fast stop || true; fi; \
	fi
	rm -rf var
