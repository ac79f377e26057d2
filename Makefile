# Two commands for a newcomer (see README, Quickstart):
#   make demo   builds .venv, then trains a short demo on built-in synthetic data into run/cyclegan/
#   make test   builds .venv, then runs the test suite
#   make test-backends   builds .venv-backends (JAX and PyTorch, CPU), runs the core tests under each
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test test-backends clean-venv

$(VENV)/.installed: requirements.txt
	@echo "Creating $(VENV) and installing requirements.txt: once, about 2 minutes (pip lists each package)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	@echo "Training the demo: 3 to 5 minutes on a 2-core CPU (one progress bar; results in run/cyclegan/)"
	$(PY) train.py --demo

test: venv
	@echo "Running the tests: about 10 to 13 minutes on a 2-core CPU (pytest shows each file and its progress)"
	$(PY) -m pytest

# The core tests under the two other Keras backends (TensorFlow is `make test`).
BACKENDS_VENV := .venv-backends
CORE_TESTS := tests/test_networks.py tests/test_cyclegan.py tests/test_training_parts.py tests/test_checkpoint.py \
	tests/test_training.py \
	$(wildcard tests/test_backends*.py tests/test_distributed.py)

$(BACKENDS_VENV)/.installed: requirements-backends.txt
	$(PYTHON) -m venv $(BACKENDS_VENV)
	$(BACKENDS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BACKENDS_VENV)/bin/python -m pip install --quiet -r requirements-backends.txt
	touch $@

test-backends: $(BACKENDS_VENV)/.installed
	KERAS_BACKEND=jax $(BACKENDS_VENV)/bin/python -m pytest -p no:cacheprovider $(CORE_TESTS)
	KERAS_BACKEND=torch $(BACKENDS_VENV)/bin/python -m pytest -p no:cacheprovider $(CORE_TESTS)

clean-venv:
	rm -rf $(VENV) $(BACKENDS_VENV)
