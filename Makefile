# cxm: two commands. `make run` sets up and serves the demo company; `make test` runs the suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CXM := $(VENV)/bin/cxm
PYTHON ?= $(shell command -v python3.11 || command -v python3)
EXTRAS ?= postgres,spark,nlp,mining,reports,dev
# Test processes: three on the 2-core CI machine (a test often waits on a server, a subprocess or
# the database: 1,215-1,384 s against 1,676 s with two); tests/conftest.py keeps tests that
# share a costly fixture on one worker.
TEST_WORKERS ?= 3
TORCH ?= 2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
export CXM_DATA_DIR ?= ./data

AXE := node_modules/axe-core/axe.min.js

.PHONY: run test bench lint setup system-deps clean

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so the nlp extra does not pull a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==$(TORCH)"
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser),
# and Java for local PySpark.
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	command -v dot >/dev/null || missing="$$missing graphviz"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# axe-core, from its npm package, for the browser tests' accessibility checks (never served).
$(AXE): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

run: $(STAMP)
	$(CXM) init
	$(CXM) demo --if-empty
	@echo
	@echo "  cxm is starting on http://$(HOST):$(PORT): sign in with one of the logins above"
	@echo
	$(CXM) serve --host $(HOST) --port $(PORT)

test: $(STAMP) system-deps $(AXE)
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache node_modules
