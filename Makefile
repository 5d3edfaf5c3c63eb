# One command each: `make run` sets up and starts the app, `make test` sets up and runs lint and the tests.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: run test lint setup setup-dev browser bench

# the package, installed editable with its dependencies (requirements.txt) and the `medsynth` command
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

run: setup
	$(PY) app.py

# Debian's Chromium for the end-to-end browser test (Playwright drives it; it cannot download its own)
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: setup-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup-dev browser lint
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q tests

bench: setup-dev
	$(PY) bench/bench_generator.py
