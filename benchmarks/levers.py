"""Candidate speed levers for the training step, applied in a benchmark process only (issue #36, item 4).

Each lever changes one thing before the CycleGAN is built; `bench_levers.py` times each against the
default and the official code in one interleaved run, and a lever moves into the project only if it is
faster there. Only the fused norm on one image moved into the project (docs/speed.md#levers-tried-against-the-official-code).

- default: the project as it is: since 2026-12-07, with AVX-512, instance norm on one image in a training
  step is one fused TensorFlow op (utils/runtime/fused_norm.py), which this benchmark found.
- keras_ops_norm: the project before it, every instance norm by keras.ops (models/layers._instance_norm).
- onepass_norm: instance norm's statistics in one pass over the activations (mean and mean of squares
  side by side, var = E[x^2] - E[x]^2) instead of mean, then the mean of the centred squares; the same
  written-out gradient. keras.ops only.
- fused_norm: every instance norm as TensorFlow's fused batch norm (a batch of n images laid side by side
  as n x C channels of one image, by transposes).
- fused_norm_batch1: the fused op on a batch of one image, keras.ops on a larger one, on any CPU (the
  project's rule with AVX-512, forced).
- fused_norm_split: the fused op on each image of a batch, split and concatenated again.
- joint_discriminators: d_A and d_B trained by one train function (one Keras model with both, one Adam
  over both: the same update as two, Adam being per weight), instead of two train_on_batch calls a step.
- caller_thread: TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD=1, the calling thread as one of oneDNN's workers.
- stacked / unstacked: the combined model's generator calls forced either way (utils/runtime/stacked_calls.py).

The layout levers the issue names have nothing to switch on in the project: `channels_first` runs as NCHW
under oneDNN (Grappler's layout optimiser leaves a CPU graph alone), and a probe of the ResNet's convolutions
(`bench_levers.py --probe-layout`) found it 1.2x slower with AVX-512 and 225x slower with AVX2 code (oneDNN's
reference kernel); oneDNN's blocked layouts (TF_ENABLE_MKL_NATIVE_FORMAT=0) were removed from TensorFlow 2.x:
its libraries read no such variable (TensorFlow 2.21).
"""

import os

LEVERS = ("default", "keras_ops_norm", "onepass_norm", "fused_norm", "fused_norm_batch1", "fused_norm_split", "joint_discriminators", "caller_thread", "stacked", "unstacked")
ENVIRONMENT = {"caller_thread": {"TF_ONEDNN_THREADPOOL_USE_CALLER_THREAD": "1"}}   # set before TensorFlow loads


def before_import(name):
    """The environment a lever needs before TensorFlow is imported."""
    if name not in LEVERS:
        raise ValueError(f"unknown lever {name!r}; choose from {', '.join(LEVERS)}")
    os.environ.update(ENVIRONMENT.get(name, {}))


def before_build(name):
    """Patch what a lever changes in the networks, before CycleGAN() builds them."""
    from models import layers
    from utils.runtime import fused_norm
    if name in ("keras_ops_norm", "onepass_norm", "fused_norm", "fused_norm_split"):
        fused_norm.wanted = lambda: False   # the project's fused rule off: the lever's norm everywhere
    if name == "onepass_norm":
        layers._instance_norm = _onepass_instance_norm
    elif name == "fused_norm":
        layers._instance_norm = _fused_instance_norm
    elif name == "fused_norm_batch1":
        fused_norm.wanted = lambda: True
    elif name == "fused_norm_split":
        layers._instance_norm = _split_fused_instance_norm


def after_build(name, gan):
    """Patch what a lever changes in the training step of a built CycleGAN."""
    if name in ("stacked", "unstacked"):
        gan.combined.stack_calls = name == "stacked"
    elif name == "joint_discriminators":
        _train_discriminators_jointly(gan)


def _onepass_instance_norm(x, epsilon):
    from keras import ops

    @ops.custom_gradient
    def normalize(x):
        mean = ops.mean(x, axis=(1, 2), keepdims=True)
        mean_of_squares = ops.mean(ops.square(x), axis=(1, 2), keepdims=True)
        inv_std = ops.rsqrt(ops.maximum(mean_of_squares - ops.square(mean), 0.0) + epsilon)
        y = (x - mean) * inv_std

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            return inv_std * (dy - ops.mean(dy, axis=(1, 2), keepdims=True)
                              - y * ops.mean(dy * y, axis=(1, 2), keepdims=True))

        return y, grad

    return normalize(x)


def _fused_instance_norm(x, epsilon):
    import tensorflow as tf
    from utils.runtime.fused_norm import instance_norm
    n, h, w, c = x.shape
    if n == 1:
        return instance_norm(x, epsilon)
    y = instance_norm(tf.reshape(tf.transpose(x, (1, 2, 0, 3)), (1, h, w, n * c)), epsilon)   # side by side
    return tf.transpose(tf.reshape(y, (h, w, n, c)), (2, 0, 1, 3))


def _split_fused_instance_norm(x, epsilon):
    import tensorflow as tf
    if x.shape[0] == 1:
        return _fused_instance_norm(x, epsilon)
    return tf.concat([_fused_instance_norm(image, epsilon) for image in tf.split(x, x.shape[0], axis=0)], axis=0)


def _train_discriminators_jointly(gan):
    """Replace the two discriminator train_on_batch calls of train_step by one (the same update)."""
    import keras
    import numpy as np
    from models.losses import discriminator_loss_per_image

    x_A, x_B = keras.Input(gan.img_shape), keras.Input(gan.img_shape)
    joint = keras.Model([x_A, x_B], [gan.d_A(x_A), gan.d_B(x_B)], name="d_joint")
    joint.compile(loss=[discriminator_loss_per_image] * 2, optimizer=gan._adam())
    joint.optimizer.build(joint.trainable_variables)

    def train_step(imgs_A, imgs_B):
        imgs_A, imgs_B = np.asarray(imgs_A, np.float32), np.asarray(imgs_B, np.float32)
        valid, fake = gan._real_fake_targets(len(imgs_A))
        g_losses, fake_A, fake_B = gan.combined.train_generators(imgs_A, imgs_B, valid, gan.executor.train_on_batch)
        fake_A, fake_B = gan.pool_A.query(fake_A), gan.pool_B.query(fake_B)
        targets = np.concatenate([valid, fake])
        logs = joint.train_on_batch([np.concatenate([imgs_A, fake_A]), np.concatenate([imgs_B, fake_B])],
                                    [targets, targets], return_dict=True)
        gan.step += 1
        return {"d_loss": 0.5 * float(logs["loss"]), "g_loss": g_losses.pop("loss"), **g_losses}

    gan.train_step = train_step
