# volumed — the two quick-start commands are `make demo` and `make test` (as root on Debian).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := runtime resources config storage keys controllers cli

.PHONY: venv bytecode system-deps demo test lint typecheck unit interop system kernel bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# An installed image carries its bytecode. With PYTHONDONTWRITEBYTECODE=1 (CI sets it) a checkout never gets
# any, and every volumed process the tests start would compile the package again (0.2 s CPU each).
bytecode: venv
	$(BIN)/python -m compileall -q $(PACKAGES) volumed

system-deps:
	bash scripts/install-system-deps.sh

demo: system-deps venv bytecode
	$(BIN)/volumed demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	bash scripts/typecheck.sh

# Every tier runs; a missing tool fails the run (tests/_tools.py), it never skips.
test: system-deps venv bytecode lint typecheck
	$(BIN)/python -m pytest -p no:cacheprovider tests

unit: venv
	$(BIN)/python -m pytest tests -m "not interop and not system and not kernel"

interop: system-deps venv
	$(BIN)/python -m pytest tests -m interop

system: system-deps venv
	$(BIN)/python -m pytest tests -m system

kernel: system-deps venv
	$(BIN)/python -m pytest tests -m kernel

bench: system-deps venv
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# docs/resources.md is generated from the resource definitions (tests/docs/test_resources_reference.py).
docs: venv
	$(BIN)/python -m volumed._reference docs/resources.md

clean:
	rm -rf $(VENV) .typecheck .mypy_cache .ruff_cache build *.egg-info
