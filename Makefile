# Two commands do everything on a fresh machine with Python 3.11, pip and make:
#   make demo   set up .venv and run the demo
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint setup system-deps clean gpu-wheels

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# Mosquitto, Chromium, PostgreSQL and NATS server, which the tests run for real (Debian
# packages; needs root or sudo).
system-deps:
	bash scripts/system-deps.sh

demo: $(STAMP)
	$(BIN)/epic demo

# Lint first: CI runs `make test`, and a tree that ruff or mypy rejects does not land.
test: lint system-deps
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHON=$(BIN)/python scripts/typecheck.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# What scripts/gpu-train.sh needs on a GPU machine that has no network and Python 3.12:
# this CLI's typer and the pydantic it needs, as wheels in .whl/ (git-ignored).
GPU_WHEELS := typer==0.29.2 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 \
	typing-inspection==0.4.5 typing_extensions==4.16.0 annotated-doc==0.0.7
gpu-wheels:
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $(GPU_WHEELS)
