# taskgate developer entry points. `make demo` and `make test` each do their own set-up on a fresh
# machine: a virtualenv in .venv with taskgate installed (editable, with the dev extras), and a
# redis-server binary (installed with apt-get when missing and running as root).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean venv ensure-redis ensure-chromium

venv: $(STAMP)

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "python3.11 or python3 is needed on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "creating the virtualenv failed: install python3-venv"; exit 1; }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

# reinstall whenever pyproject.toml changes (new dependencies, entry points)
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

ensure-redis:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "redis-server is missing: installing it with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install redis-server;"; \
	    echo "macOS: brew install redis) and run make again"; \
	    exit 1; \
	  fi; \
	fi

# headless Chromium for the dashboard test (Debian's package; no browser downloads)
ensure-chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "chromium is missing: installing it with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else \
	    echo "chromium is missing: install it (Debian/Ubuntu: sudo apt-get install chromium) and run make again"; \
	    exit 1; \
	  fi; \
	fi

demo: $(STAMP) ensure-redis
	$(VENV)/bin/taskgate demo

test: $(STAMP) ensure-redis ensure-chromium
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

# ruff (rules), ruff format (layout) and mypy strict; CI (.ci/run) runs this before the tests
lint: $(STAMP)
	$(VENV)/bin/ruff check taskgate tests
	$(VENV)/bin/mypy taskgate
	$(VENV)/bin/ruff format --check taskgate tests

bench: $(STAMP) ensure-redis
	$(VENV)/bin/taskgate bench scheduler

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis demo-report
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
