"""TensorFlow's oneDNN CPU kernels on every x86 CPU, not only on the ones TensorFlow picks them for.

TensorFlow turns its oneDNN kernels on by default only on x86 CPUs with AVX512 neural-network
instructions (AVX512_VNNI, AVX512_BF16, AMX). Elsewhere (a 2-core AMD EPYC with AVX2 only, a common
cloud CPU; many laptops) it falls back to its Eigen kernels. Measured there, one fresh process each
(benchmarks/results/cpu_tensorflow_onednn_avx2.json): a book U-Net training step takes 1.80 s with
Eigen against 0.76-0.84 s with oneDNN (2.2-2.4x faster), a ResNet-9 step 3.26 s against 2.73 s (1.2x);
translating one 128 px image gets slower, 0.03 -> 0.07 s (U-Net) and 0.09 -> 0.19 s (ResNet-9).
Training is what takes a student's hour, so the project asks for oneDNN on every x86 CPU.

TensorFlow reads the variable once, when it loads: `prefer_onednn()` runs on import of `models` (and so
of `utils`), which every entry point and notebook does before Keras. A value the user set is kept
(`TF_ENABLE_ONEDNN_OPTS=0 python train.py ...` runs the Eigen kernels). Other backends ignore it.
"""

import os
import platform

X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def prefer_onednn(environ=None, machine=None):
    """Set TF_ENABLE_ONEDNN_OPTS=1 on an x86 machine unless it is already set. Returns the value in force (or None)."""
    environ = os.environ if environ is None else environ
    if (machine or platform.machine()).lower() in X86:
        environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    return environ.get("TF_ENABLE_ONEDNN_OPTS")
