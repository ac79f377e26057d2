"""Data-parallel training across the devices of one machine, with the backend's own engine.

This is the one module that calls a backend directly, and only because the engines are
backend-specific: Keras 3 offers `keras.distribution.DataParallel` on JAX only, and TensorFlow's
engine is `tf.distribute.MirroredStrategy`. `CycleGAN(data_parallel=True)` enters
`data_parallel_scope()` while it builds and compiles its networks:

- JAX: `keras.distribution.DataParallel` over all devices (`keras.distribution.list_devices()`):
  weights replicated, each batch split along its first axis; XLA inserts the gradient all-reduce.
  The step computes exactly the global-batch math, sharded.
- TensorFlow: `tf.distribute.MirroredStrategy` over the visible GPUs, or over all logical CPU
  devices when there is no GPU; each replica gets its slice of the batch
  (`CycleGAN.train_step` and `translate` split it), gradients are all-reduced (sum of replica
  means / replicas).
- PyTorch: not supported here (Keras' torch backend has no distribution engine; torch DDP needs
  one process per device), so the option raises a ValueError naming the two that work.

Several machines: JAX, `keras.distribution.initialize()` in every process before building (one
process per host, same script), then the same DataParallel; TensorFlow, MultiWorkerMirroredStrategy
with TF_CONFIG. Neither was tested here (see README, "GPU / multi-device").
"""

import contextlib

import keras


def device_count():
    """Devices a data-parallel CycleGAN would use on this backend (1 when there is nothing to split)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return len(keras.distribution.list_devices())
    if backend == "tensorflow":
        return len(_tf_devices())
    return 1


def _tf_devices():
    import tensorflow as tf  # backend-specific on purpose, see the module docstring

    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


@contextlib.contextmanager
def data_parallel_scope(enabled=True):
    """Context in which a CycleGAN's networks are built and compiled for data-parallel training.

    On JAX the distribution stays set after the block (the trainer reads it at every step).
    """
    if not enabled:
        yield None
        return
    backend = keras.backend.backend()
    if backend == "jax":
        distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        keras.distribution.set_distribution(distribution)
        yield distribution
    elif backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices=_tf_devices())
        with strategy.scope():
            yield strategy
    else:
        raise ValueError(f"data_parallel=True needs the jax or tensorflow backend (KERAS_BACKEND), "
                         f"not {backend!r}: Keras has no distribution engine for {backend}.")


def train_on_batch_mirrored(strategy, model, x, y):
    """TensorFlow MirroredStrategy: one `train_on_batch` with the batch split across the replicas.

    Keras' `train_on_batch` hands every replica the whole batch (right result, no speed-up), so the
    batch goes in as a distributed dataset of one element, which gives each replica its slice.
    The replicas' logs are averaged, so the combined model's fakes cannot ride in them: for that
    model they are computed here, before the update (one extra forward of each generator, only in
    this mode). Returns the logs as numpy / floats.
    """
    fakes = {}
    if hasattr(model, "g_AB") and hasattr(model, "g_BA"):  # models.combined.CombinedGeneratorModel
        fakes = {"fake_A": keras.ops.convert_to_numpy(model.g_BA(x["img_B"])),
                 "fake_B": keras.ops.convert_to_numpy(model.g_AB(x["img_A"]))}
    model._maybe_symbolic_build(data_batch=(x, y, None))  # what train_on_batch does first
    model.make_train_function()
    model.reset_metrics()
    logs = model.train_function(iter(_one_batch_split(strategy, (x, y))))
    logs = {name: keras.ops.convert_to_numpy(value) for name, value in logs.items()}
    return {**logs, **fakes}


def predict_on_batch_mirrored(strategy, model, x):
    """TensorFlow MirroredStrategy: `predict_on_batch` with the batch split across the replicas.

    Keras' `predict_on_batch` hands every replica the whole batch and concatenates their outputs
    (n_replicas x the images); here each replica predicts its slice, in order. The batch size must
    be a multiple of the replica count (`CycleGAN.translate` pads it).
    """
    model.make_predict_function()
    element = next(iter(_one_batch_split(strategy, (x,))))
    return keras.ops.convert_to_numpy(model.predict_function([element]))


def _one_batch_split(strategy, data):
    """A distributed dataset of one global batch: each replica gets its slice, in order."""
    import tensorflow as tf

    batch_size = len(keras.tree.flatten(data)[0])
    dataset = tf.data.Dataset.from_tensor_slices(data).batch(batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def strategy_scope(strategy):
    """The TensorFlow strategy's scope (for a recompile), or a no-op."""
    return strategy.scope() if is_tf_strategy(strategy) else contextlib.nullcontext()


def is_tf_strategy(strategy):
    return strategy is not None and hasattr(strategy, "experimental_distribute_dataset")
