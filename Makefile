# The two commands: `make run` serves the matchmaker, `make test` runs every test.
# Both set up everything they need (a virtual environment in .venv) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint lock settings-docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Exactly the tested versions, every file checked against its hash (the lock files are
# made from pyproject.toml by `make lock`), then the project itself without resolving.
# Editable: the venv runs this checkout, never a stale copy of it in site-packages.
$(VENV)/.run-deps: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.test-deps: requirements-test.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --require-hashes -r requirements-test.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

run: $(VENV)/.run-deps
	$(BIN)/python -m animochat.launcher

test: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrite the README's configuration table and .env.example from the settings declared in
# animochat/config.py (tests/test_deploy_config.py fails while they differ).
settings-docs: $(VENV)/.run-deps
	$(BIN)/python -m animochat.config_docs --write

# Refresh the lock files after changing dependencies in pyproject.toml (both hold the
# postgres extra, so DATABASE_URL=postgresql://… works as tested). Versions already
# locked are kept while they still fit; `make lock UPGRADE=--upgrade` moves every package
# to its newest allowed release. Resolved for every platform, Python 3.11 and later.
UPGRADE ?=
LOCK := $(BIN)/python -m uv pip compile pyproject.toml --quiet --universal \
	--python-version 3.11 --generate-hashes --index-url https://pypi.org/simple $(UPGRADE)

lock: | $(BIN)/python
	$(BIN)/python -m pip install -q uv
	$(LOCK) --extra postgres -o requirements.lock
	$(LOCK) --extra postgres --extra test -o requirements-test.lock

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
