"""Shared test setup: quiet TensorFlow's C++ logs and keep runs on the CPU, deterministic; a tiny dataset."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A tiny synthetic_apple2orange (32 px, 6 training and 2 test images a domain) for the training tests."""
    from utils.synthetic import ensure_dataset
    root = tmp_path_factory.mktemp("data")
    ensure_dataset("synthetic_apple2orange", data_root=root, size=32, n_train=6, n_test=2, seed=0)
    return root
