# The two set-up commands of the README: `make serve` and `make test`.
# Each creates .venv on first use and installs what pyproject.toml declares.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test lint chromium bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

serve: $(VENV)/.runtime
	$(BIN)/osteolux serve

# The browser tests need Debian's chromium; install it once if it is missing.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

lint: $(VENV)/.test
	$(BIN)/ruff check .

test: $(VENV)/.test chromium lint
	$(BIN)/pytest

# Benchmarks print medians and ratios against references measured in the same run.
bench: $(VENV)/.test
	$(BIN)/python bench/run.py
