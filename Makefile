# Two commands for a newcomer (see README, Quickstart; how long they take: docs/speed.md):
#   make demo   builds .venv, then trains a short demo on built-in synthetic data into run/cyclegan/
#   make test   builds .venv, then runs the test suite (all but the long end-to-end tests)
#   make test-long   the long end-to-end tests (notebooks executed, process kills, data parallel, the browser)
#   make test-backends   builds .venv-backends (JAX and PyTorch, CPU), runs the core tests under each
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test test-long test-backends check-platforms clean-venv

$(VENV)/.installed: requirements.txt
	@echo "Creating $(VENV) and installing requirements.txt, once (time: docs/speed.md, How long the commands take; pip lists each package)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	@echo "Training the demo (time: docs/speed.md, How long the commands take; one progress bar; results in run/cyclegan/)"
	$(PY) train.py --demo

# make test's worker processes (pytest-xdist): two use both cores of a 2-core CPU, where TensorFlow's tracing
# runs on one; make test TEST_WORKERS=1 runs the suite in one process, TEST_WORKERS=auto one a core.
TEST_WORKERS ?= 2

test: venv
	@echo "Running the tests on $(TEST_WORKERS) worker processes (time: docs/speed.md, How long the commands take)"
	$(PY) -m pytest -m "not long" -n $(TEST_WORKERS)

test-long: venv
	@echo "Running the long end-to-end tests (time: docs/speed.md, How long the commands take)"
	$(PY) -m pytest -m long

# The core tests under the two other Keras backends (TensorFlow is `make test`).
BACKENDS_VENV := .venv-backends
CORE_TESTS := tests/test_networks.py tests/test_cyclegan.py tests/test_training_parts.py tests/test_checkpoint.py \
	tests/test_training.py \
	$(wildcard tests/test_backends*.py tests/test_distributed.py)

# PyTorch's CPU build (requirements-backends.txt says why it is not in that file): from pip's usual sources
# (here: a local copy), else from PyTorch's CPU index; where neither has it, .no-torch records why and
# test-backends runs JAX alone.
TORCH_CPU := torch==2.13.0+cpu
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
BPY := $(BACKENDS_VENV)/bin/python

$(BACKENDS_VENV)/.installed: requirements-backends.txt
	$(PYTHON) -m venv $(BACKENDS_VENV)
	$(BPY) -m pip install --quiet --upgrade pip
	$(BPY) -m pip install --quiet -r requirements-backends.txt
	rm -f $(BACKENDS_VENV)/.no-torch
	$(BPY) -m pip install --quiet "$(TORCH_CPU)" 2>/dev/null \
	  || $(BPY) -m pip install --quiet --timeout 20 --retries 1 --extra-index-url $(TORCH_CPU_INDEX) "$(TORCH_CPU)" \
	  || echo "no CPU build of $(TORCH_CPU) could be installed: neither pip's index nor $(TORCH_CPU_INDEX) had it" \
	     > $(BACKENDS_VENV)/.no-torch
	touch $@

test-backends: $(BACKENDS_VENV)/.installed
	KERAS_BACKEND=jax $(BPY) -m pytest -p no:cacheprovider $(CORE_TESTS)
	@if [ -f $(BACKENDS_VENV)/.no-torch ]; then \
	  echo "SKIPPED: the PyTorch backend's tests ($$(cat $(BACKENDS_VENV)/.no-torch)). The JAX run above passed."; \
	else \
	  echo "KERAS_BACKEND=torch $(BPY) -m pytest -p no:cacheprovider $(CORE_TESTS)"; \
	  KERAS_BACKEND=torch $(BPY) -m pytest -p no:cacheprovider $(CORE_TESTS); \
	fi

# Does requirements.txt resolve on Linux x86_64/aarch64, macOS arm64 and Windows, for Python 3.11-3.13, and
# with tensorflow[and-cuda]? Asks the package index, installs nothing (tools/check_platforms.py); run by .ci/run.
CHECK_VENV := .venv-check
$(CHECK_VENV)/.installed:
	$(PYTHON) -m venv $(CHECK_VENV)
	$(CHECK_VENV)/bin/python -m pip install --quiet pip==26.3 uv==0.13.9 packaging==26.4
	touch $@

check-platforms: $(CHECK_VENV)/.installed
	$(CHECK_VENV)/bin/python tools/check_platforms.py --uv $(CHECK_VENV)/bin/uv

clean-venv:
	rm -rf $(VENV) $(BACKENDS_VENV) $(CHECK_VENV)
