# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install migrate run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the declared dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

migrate: install
	$(BIN)/flask --app wsgi db upgrade

run: migrate
	$(BIN)/python -m integration.serve

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

bench: migrate
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .ruff_cache
