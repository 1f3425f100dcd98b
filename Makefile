# taskgate developer entry points. `make demo` and `make test` each do their own set-up on a fresh
# machine: a virtualenv in .venv with taskgate installed (editable, with the dev extras), and a
# redis-server binary (installed with apt-get when missing and running as root).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# pytest-xdist workers for `make test`: more than the 2 cores pays, as most tests wait on timers,
# sockets and child processes rather than compute; each worker has its own throwaway redis-server.
# TEST_WORKERS=0 runs everything in one process. Tests are scheduled one by one, except a module
# with a big module-scoped set-up and the two chaos lanes (tests/scheduling.py, via --dist
# loadscope); modules with a `slow` test are collected first (tests/conftest.py), so they start first.
TEST_WORKERS ?= 4

.PHONY: demo test lint bench clean venv ensure-redis ensure-chromium ensure-promtool

venv: $(STAMP)

$(VENV)/bin/python:
	@test -n "$(PYTHON)" || { echo "python3.11 or python3 is needed on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV) || { echo "creating the virtualenv failed: install python3-venv"; exit 1; }
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

# reinstall whenever pyproject.toml changes (new dependencies, entry points)
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# $(call apt-ensure,COMMAND,PACKAGE,WHAT FOR,EXIT): install PACKAGE with apt-get when COMMAND is missing
# and we are root; otherwise say how, and exit with EXIT (1: needed; 0: its tests skip without it)
define apt-ensure
	@if ! command -v $(1) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "$(1) is missing ($(3)): installing $(2) with apt-get"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $(2) >/dev/null; \
	  else \
	    echo "$(1) is missing ($(3)): install it (Debian/Ubuntu: sudo apt-get install $(2))"; \
	    exit $(4); \
	  fi; \
	fi
endef

ensure-redis:
	$(call apt-ensure,redis-server,redis-server,the store; tests start their own,1)

# headless Chromium for the dashboard test (Debian's package; no browser downloads)
ensure-chromium:
	$(call apt-ensure,chromium,chromium,the dashboard's browser test,1)

# promtool checks deploy/prometheus alert rules (the test skips without it)
ensure-promtool:
	$(call apt-ensure,promtool,prometheus,checks the alert rules,0)

demo: $(STAMP) ensure-redis
	$(VENV)/bin/taskgate demo

test: $(STAMP) ensure-redis ensure-chromium ensure-promtool
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

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
