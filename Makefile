# Two commands a newcomer needs: `make run` and `make test` (`make lint` before a commit). All build .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# Real failure texts (outside the package): runbook patterns are also tried on them when present.
SAMPLES := ../shared/data/gpu-failures/exemplars.jsonl

.PHONY: run test venv bench lint clean lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Dependencies come from the lock files (exact versions, with hashes), the package itself is
# installed editable on top without resolving anything. Reinstall when either changes.
# `make lock` re-resolves pyproject.toml into requirements.lock (deploy) and requirements-dev.lock.
LOCK_FLAGS := --python-version 3.11 --universal --generate-hashes
$(STAMP): pyproject.toml requirements-dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-dev.lock

venv: $(STAMP)

# Host and port have one home: `serve`'s own defaults (127.0.0.1:8000), so `make run ARGS="--port
# 8123"` passes one --port and links follow it. The demo feeds a simulated incident (only here).
run: $(STAMP)
	$(BIN)/incidentbot serve --demo $(ARGS)

test: $(STAMP)
	$(BIN)/incidentbot runbooks check runbooks $(if $(wildcard $(SAMPLES)),--samples $(SAMPLES))
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Lint the package: ruff's rules and its formatting (config in pyproject.toml), then mypy ([tool.mypy]).
lint: $(STAMP)
	$(BIN)/ruff check incidentbot
	$(BIN)/ruff format --check incidentbot
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/grouping.py
	$(BIN)/python bench/diagnosis.py
	$(BIN)/python bench/slack.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache incidentbot.db*
