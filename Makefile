# Set-up on a new machine: `make run` serves Satchel, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
LINT_PATHS := src tests $(wildcard bench)
JS_TESTS := tests/js

.PHONY: run test lint typecheck pytest test-scale bench bench-drive format docs clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/satchel serve --host $(HOST) --port $(PORT)

# The PostgreSQL variants of the suites test-scale runs are left to it: every test still runs on
# SQLite and on PostgreSQL, and on local storage and S3, without running twice on PostgreSQL.
test: PYTEST_ARGS += --leave-to-scale="$(SCALE_TESTS)"
test: lint typecheck pytest test-scale

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

# The API suites (public, /apiv1, /api/v2, tus, CLI) once more on the scale-out engines: blobs
# in S3 (SeaweedFS from its wheel), rate limits and slots in Redis (SATCHEL_TEST_REDIS_URL),
# PostgreSQL (SATCHEL_TEST_DATABASE_URL; its variants only, SQLite ran them above).
SCALE_TESTS := tests/test_public_upload.py tests/test_public_download.py tests/test_manage.py \
	tests/test_tus.py tests/test_tus_clients.py tests/test_apiv1_drive.py tests/test_apiv1_access.py \
	tests/test_apiv1_keys.py tests/test_apiv2.py tests/test_apiv2_client.py tests/test_client_cli.py \
	tests/test_client_library.py tests/test_drive_uploads.py tests/test_url_import.py
test-scale: $(VENV)/.installed $(JS_TESTS)/node_modules/.installed
	SATCHEL_TEST_STORAGE=s3 $(PY) -m pytest $(if $(SATCHEL_TEST_DATABASE_URL),-k "not sqlite") $(SCALE_TESTS)

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
