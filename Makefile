# Two commands for a newcomer (see README, Quickstart):
#   make demo   builds .venv, then trains a short demo on built-in synthetic data into run/cyclegan/
#   make test   builds .venv, then runs the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test clean-venv

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) train.py --demo

test: venv
	$(PY) -m pytest

clean-venv:
	rm -rf $(VENV)
