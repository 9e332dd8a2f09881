# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates .venv and installs the project (with its test extras) the first time.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run demo test check lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## start the app: make run ARGS="--port 9000 --demo"
	$(PY) run.py $(ARGS)

demo: $(STAMP)  ## start the app with a demo provider, client and services
	$(PY) run.py --demo $(ARGS)

test: $(STAMP)  ## every test: the Python suite (server, Redis, real Chromium), then the JS unit tests
	$(PY) -m pytest $(PYTEST_ARGS)
	node --test tests/js/

check: $(STAMP)  ## lint, format check and strict typing of app/
	$(VENV)/bin/ruff check app tests run.py
	$(VENV)/bin/ruff format --check app tests run.py
	$(VENV)/bin/mypy app run.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix app tests run.py
	$(VENV)/bin/ruff format app tests run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
