"""Instance norm in a training step as TensorFlow's fused batch-norm kernel, where that is faster: a speed-up.

models/layers.InstanceNormalization normalises with keras.ops (any backend). In a training step with
TensorFlow's oneDNN on an x86 CPU with AVX-512 it calls `instance_norm` here instead: FusedBatchNormV3 in
training mode on a batch of one image normalises each channel over that image's pixels, which is instance
norm, in one op forward and one (FusedBatchNormGradV3) backward, where keras.ops takes several reductions
and elementwise passes. The same numbers to float32 round-off (tests/test_networks.py). A batch of
several images keeps keras.ops (the fused op would pool their statistics; laying them side by side as
channels costs more than it saves), as do translation and export (training=False), the other backends,
GPUs and CPUs without AVX-512, where it was measured slower (docs/speed.md#levers-tried-against-the-official-code).
"""

import functools
import os
import platform

from utils.runtime import devices
from utils.runtime.onednn import VARIABLE, X86, cpu_has_avx512


@functools.lru_cache(maxsize=None)
def wanted():
    """Whether this process uses the fused kernel: TensorFlow on an x86 CPU with AVX-512, with its oneDNN
    kernels (TensorFlow's default there; not with TF_ENABLE_ONEDNN_OPTS=0) and no GPU. Decided once."""
    import keras
    if keras.backend.backend() != "tensorflow" or os.environ.get(VARIABLE) == "0":
        return False
    if platform.machine().lower() not in X86 or not cpu_has_avx512():
        return False
    return devices.gpu() is None


def applies(x, training):
    """Whether `instance_norm` normalises `x` (batch, h, w, c) here: a training step on one image."""
    return bool(training) and x.shape[0] == 1 and wanted()


def instance_norm(x, epsilon):
    """(x - mean) / sqrt(var + eps) over the pixels of one image (1, h, w, c), as one fused op."""
    import tensorflow as tf
    ones = tf.ones((x.shape[-1],), x.dtype)
    y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, ones, tf.zeros_like(ones), epsilon=epsilon, is_training=True)
    return y
