# claude-force: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ONLY   ?=

.PHONY: demo test lint bench venv venv-dev clean typecheck

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

demo: venv
	$(BIN)/claude-force demo

test: venv-dev
	bash scripts/test-services.sh
	$(BIN)/python -m pytest --cov --cov-report=term

lint: venv-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/vermin --target=3.10- --violations --no-tips --eval-annotations --backport typing_extensions src/claude_force

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks $(if $(ONLY),--only $(ONLY),)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage
