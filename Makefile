# Quickstart:  `make demo` (set up, export the bundled model, embed, print similarities)
#              `make test` (set up, run the whole test suite)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torchvision parity tests run in their own venv: PyPI's torchvision does not import beside torch 2.13.0+cpu
VISION_VENV ?= .venv-vision
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

# embedrt vs PyTorch, full suite (README "Benchmarks"); e.g. make bench BENCH_ARGS="--quick"
bench: setup
	$(BIN)/embedrt bench --out bench-out $(BENCH_ARGS)

$(VISION_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VISION_VENV)
	$(VISION_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VISION_VENV)/bin/python -m pip install --quiet -e ".[torchvision-tests]"
	touch $@

test: setup $(VISION_VENV)/.installed
	$(BIN)/python -m pytest tests
	$(VISION_VENV)/bin/python -m pytest tests/test_image_torchvision.py
