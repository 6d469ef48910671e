# Set-up on a new machine: `make run` serves Satchel, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
LINT_PATHS := src tests $(wildcard bench)
JS_TESTS := tests/js

.PHONY: run test lint typecheck pytest bench bench-drive format docs clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/satchel serve --host $(HOST) --port $(PORT)

test: lint typecheck pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

# tus-js-client, run under Node by tests/test_tus_clients.py: installed exactly as locked.
$(JS_TESTS)/node_modules/.installed: $(JS_TESTS)/package.json $(JS_TESTS)/package-lock.json
	npm ci --prefix $(JS_TESTS) --no-audit --no-fund
	touch $@

# Debian's Chromium for tests/browser (Playwright drives it; it never downloads a browser).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

pytest: $(VENV)/.installed $(JS_TESTS)/node_modules/.installed $(CHROMIUM)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) bench/run.py $(BENCH_ARGS)

bench-drive: $(VENV)/.installed
	cd bench && ../$(PY) drive.py $(BENCH_ARGS)

# The generated parts of the docs (the settings table); a test fails when they are stale.
docs: $(VENV)/.installed
	$(PY) -m satchel.docs_gen docs

format: $(VENV)/.installed
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(JS_TESTS)/node_modules
