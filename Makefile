# Vitrine — developer and operator entry points. `make demo`, `make run` and `make test` work
# on a fresh Debian machine with Python 3.11: they create .venv, install what is missing, go.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run demo test deps test-deps venv migrate lint fmt clean

$(STAMP): pyproject.toml setup.py worker/_pageshare.c
	@command -v $(PY) >/dev/null || PY=python3; \
	  test -x $(BIN)/python || $${PY:-$(PY)} -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# System packages the embedded default needs (Debian). Skipped when already present.
deps:
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# What the test suite needs on top (the portal's browser tests drive Debian's Chromium).
test-deps: deps
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (Debian package, for the portal's browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

run: venv deps
	$(BIN)/vitrine run

# The whole platform on the offline sandbox (Discord + Mercado Pago stand-ins) with a seeded
# store; `.venv/bin/vitrine demo buy` in another terminal runs a purchase. Ctrl-C stops it all.
demo: venv deps
	$(BIN)/vitrine demo

migrate: venv
	$(BIN)/vitrine migrate

# The whole suite: SQLite always; the PostgreSQL-marked tests too when a server is reachable
# (VITRINE_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
test: venv test-deps
	$(BIN)/python -m pytest -n 2 -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache
