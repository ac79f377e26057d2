"""Shared test setup: quiet TensorFlow's C++ logs and keep runs on the CPU, deterministic."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
