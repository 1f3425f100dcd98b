# `make demo` and `make test` each do their own set-up on a fresh machine: a virtualenv in .venv
# with taskgate installed, and a redis-server binary (installed with apt when missing and root).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean redis-server

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

redis-server:
	@if ! command -v redis-server >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing redis-server with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "redis-server is missing: install it (e.g. 'sudo apt-get install redis-server') and rerun"; \
	    exit 1; \
	  fi; \
	fi

demo: $(STAMP) redis-server
	$(VENV)/bin/taskgate demo

test: $(STAMP) redis-server
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check taskgate tests
	$(VENV)/bin/mypy taskgate

bench: $(STAMP) redis-server
	$(VENV)/bin/taskgate bench scheduler

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache demo-report
