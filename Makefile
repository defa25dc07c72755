# Two commands for a new user: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export PATH := $(CURDIR)/$(BIN):$(PATH)
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install browser run demo test lint typecheck pytest bench screenshots clean

# The virtualenv is rebuilt from the lock file whenever pyproject.toml or uv.lock changes.
$(VENV)/.installed: pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv sync --frozen --all-groups
	@touch $@

install: $(VENV)/.installed

# Browser tests drive Debian's Chromium (never a downloaded browser build).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py versions_revalidate
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py demo

run: demo
	@echo "Open http://127.0.0.1:8000  (admin: http://127.0.0.1:8000/admin/, API docs: /api/docs/)"
	$(BIN)/honcho start -f Procfile -p 8000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

pytest: install browser
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# wrk (Debian) drives the HTTP benchmarks; without it they fall back to a slower Python client.
bench: install
	@command -v wrk >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq wrk || echo "wrk not installed: using the Python client"; }
	$(BIN)/python -m bench $(BENCH)

# Screenshots of the main pages at desktop and phone width, into docs/ui/ (see docs/ui.md).
screenshots: install browser
	MLPLATFORM_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/test_screenshots.py -q

clean:
	rm -rf $(VENV) var
