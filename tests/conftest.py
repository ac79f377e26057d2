"""Shared test setup: quiet TensorFlow's C++ logs and keep runs on the CPU, deterministic; a tiny dataset
and a tiny untrained run."""

import os

import pytest

from utils.runtime.onednn import prefer_onednn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
prefer_onednn()   # TensorFlow's training kernels, as every entry script chooses them (utils/runtime/onednn.py)
# `CYCLEGAN_CPU_KIND=avx2 make test` runs the suite with every choice this project makes from the CPU made as
# on a CPU without AVX-512 (models/onednn.cpu_flags); `=avx512` the other way (docs/testing.md, "Both CPU
# kinds"). It leaves oneDNN's own kernels alone: ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU is no AVX2 CPU
# (TensorFlow still sends bfloat16 convolutions to oneDNN, which then has no kernel for them).


def pytest_report_header(config):
    from utils.runtime.onednn import CPU_KIND_VARIABLE, cpu_flags, cpu_has_avx512
    chosen = os.environ.get(CPU_KIND_VARIABLE)
    kind = "AVX-512" if cpu_has_avx512() else "no AVX-512"
    bf16 = "with" if {"avx512_bf16", "amx_bf16"} & cpu_flags() else "without"
    source = f"{CPU_KIND_VARIABLE}={chosen}" if chosen else f"this machine's; {CPU_KIND_VARIABLE}=avx2 or avx512 for the other"
    lines = [f"CPU kind the code decides for: {kind}, {bf16} bfloat16 ({source})"]
    budget = SUITE_MINUTES.get(config.option.markexpr)
    if budget:
        lines.append(f"time: {budget} (docs/speed.md, How long the commands take)")
    return lines


# What each selection took on 2 cores, idle (docs/speed.md): printed when the run starts.
SUITE_MINUTES = {"not long": "about 3.5 min on an AVX-512 CPU on two workers (make test; 5.5 in one process), "
                             "about 10 min in one process on an AVX2-only one",
                 "long": "about 10 min on an AVX-512 CPU, more on an AVX2-only one (make test-long)"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A tiny synthetic_apple2orange (32 px, 6 training and 2 test images a domain) for the training tests."""
    from utils.datasets.synthetic import ensure_dataset
    root = tmp_path_factory.mktemp("data")
    ensure_dataset("synthetic_apple2orange", data_root=root, size=32, n_train=6, n_test=2, seed=0)
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder holding only a checkpoint of an untrained CycleGAN (32 px, 4/4 filters, seed 0):
    enough to test what translating does with files, names and sizes."""
    from models import CycleGAN
    from utils.training import checkpoint
    run = tmp_path_factory.mktemp("run") / "0001_tiny"
    checkpoint.save(CycleGAN(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, seed=0), run / "weights")
    return run
