# The two set-up commands of the README: `make serve` and `make test`.
# Each creates .venv on first use and installs what pyproject.toml declares.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test lint chromium bench workspace

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

serve: $(VENV)/.runtime workspace
	$(BIN)/osteolux serve

# The browser tests need Debian's chromium; install it once if it is missing.
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

lint: $(VENV)/.test
	$(BIN)/ruff check . && $(BIN)/mypy

test: $(VENV)/.test chromium lint workspace
	cd web && npm test
	$(BIN)/pytest -n auto --maxprocesses=4 --dist loadfile

# The lab workspace (web/): npm ci from the lock file, then a production build into web/dist,
# which the app serves at /. Rebuilt only when a source file changed.
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json
web/node_modules/.installed: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build

workspace: web/dist/index.html

# Benchmarks print medians and ratios against references measured in the same run.
bench: $(VENV)/.test
	$(BIN)/python bench/run.py
