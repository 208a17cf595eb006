# OpsConductor Event Engine — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint unit bench clean services

install: $(STAMP)

# Re-install only when the package metadata changed.
$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	exec $(BIN)/opsconductor run

services: install
	scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app

test: install services lint
	$(BIN)/pytest -p no:cacheprovider

unit: install
	$(BIN)/pytest -p no:cacheprovider tests/unit

bench: install services
	$(BIN)/python bench/webhook.py
	$(BIN)/python bench/receivers.py

clean:
	rm -rf $(VENV) var *.egg-info .mypy_cache .ruff_cache
