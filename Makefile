# Quickstart:  `make demo` (set up, export the bundled model, embed, print similarities)
#              `make test` (set up, run the whole test suite)
# Both install from the committed lock files (requirements/*.lock): the releases CI tested.
# `make test-latest` runs the suite on the newest releases pyproject.toml allows; `make lock` then records them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements/dev.lock
# torchvision parity tests run in their own venv: PyPI's torchvision does not import beside torch 2.13.0+cpu
VISION_VENV ?= .venv-vision
VISION_LOCK := requirements/vision.lock
LATEST_VENV ?= .venv-latest
MODEL_DIR ?= models/all-MiniLM-L6-v2
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test test-gpu test-latest lock docs bench bench-peers setup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/embedrt export text default --out $(MODEL_DIR) --overwrite
	$(BIN)/python examples/similarity.py $(MODEL_DIR)

# embedrt vs PyTorch, full suite (docs/benchmarks.md); e.g. make bench BENCH_ARGS="--quick"
bench: setup
	$(BIN)/embedrt bench --out bench-out $(BENCH_ARGS)

# embedrt against sentence-transformers' ONNX and OpenVINO backends, fastembed and torch (docs/benchmarks.md):
# each peer in its own venv (their pins clash), made from requirements/peers-*.txt, then the suite; e.g.
# make bench-peers BENCH_ARGS="--peers st-onnx-qint8,embedrt-int8" measures two and keeps the rest of bench-out/peers
PEER_VENVS ?= .venv-peers
PEERS := st-onnx st-openvino fastembed

$(PEER_VENVS)/%/.installed: requirements/peers-%.txt requirements/peers-%.lock
	rm -rf $(PEER_VENVS)/$*
	$(PYTHON) -m venv $(PEER_VENVS)/$*
	$(PEER_VENVS)/$*/bin/python -m pip install --quiet --upgrade pip
	$(PEER_VENVS)/$*/bin/python -m pip install --quiet -r requirements/peers-$*.txt -c requirements/peers-$*.lock
	@# optimum-intel requires torchvision, whose PyPI build breaks transformers' imports beside torch 2.13.0+cpu; text never uses it
	if [ "$*" = st-openvino ]; then $(PEER_VENVS)/$*/bin/python -m pip uninstall --quiet -y torchvision; fi
	touch $@

bench-peers: setup $(PEERS:%=$(PEER_VENVS)/%/.installed)
	$(BIN)/embedrt bench --suite peers --peer-venvs $(PEER_VENVS) --out bench-out/peers $(BENCH_ARGS)

$(VISION_VENV)/.installed: pyproject.toml $(VISION_LOCK)
	$(PYTHON) -m venv $(VISION_VENV)
	$(VISION_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VISION_VENV)/bin/python -m pip install --quiet -c $(VISION_LOCK) -e ".[torchvision-tests]"
	touch $@

test: setup $(VISION_VENV)/.installed
	$(BIN)/python -m pytest tests
	$(VISION_VENV)/bin/python -m pytest tests/test_image_torchvision.py

# The GPU tests (tests/test_gpu.py): they run where onnxruntime-gpu offers CUDA and an NVIDIA GPU is present, and are
# skipped with the reason elsewhere. Install the GPU build first (docs/gpu.md); on a GPU machine without our venv:
# PYTHONPATH=. python -m pytest -m gpu tests/test_gpu.py
test-gpu: setup
	$(BIN)/python -m pytest -m gpu tests/test_gpu.py -rs

# The documentation site, warnings as errors (broken links and references fail the build).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# A fresh venv with the newest releases the declared ranges allow (no lock), and the whole suite on it.
$(LATEST_VENV)/.installed: pyproject.toml
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	touch $@

test-latest: $(LATEST_VENV)/.installed
	$(LATEST_VENV)/bin/python -m pytest tests

# Refresh the locks: `make test-latest lock` records the releases that just passed (and the vision venv's).
lock: $(LATEST_VENV)/.installed $(VISION_VENV)/.installed
	{ echo "# pip constraints for make setup/test: the releases of .venv-latest, written by 'make lock'"; \
	  $(LATEST_VENV)/bin/python -m pip freeze --exclude-editable; } > $(LOCK)
	{ echo "# pip constraints for the torchvision tests' venv, written by 'make lock'"; \
	  $(VISION_VENV)/bin/python -m pip freeze --exclude-editable; } > $(VISION_LOCK)
