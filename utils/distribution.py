"""Data-parallel training across devices, with the backend's own engine.

This is the one module that calls a backend directly, and only because the engines are
backend-specific: Keras 3 offers `keras.distribution.DataParallel` on JAX only, and TensorFlow's
engines are `tf.distribute` strategies. `CycleGAN(data_parallel=True)` enters
`data_parallel_scope()` while it builds and compiles its networks:

- JAX: `keras.distribution.DataParallel` over all devices (`keras.distribution.list_devices()`):
  weights replicated, each batch split along its first axis; XLA inserts the gradient all-reduce.
  The step computes exactly the global-batch math, sharded.
- TensorFlow: `tf.distribute.MirroredStrategy` over the visible GPUs, or over all logical CPU
  devices when there is no GPU; `MultiWorkerMirroredStrategy` when TF_CONFIG describes a cluster
  of several machines (each runs the same script on the same global batch and keeps its slice).
  Each replica gets its slice of the batch (`CycleGAN.train_step` and `translate` call
  `train_on_batch_mirrored` / `predict_on_batch_mirrored` here), gradients are all-reduced.
- PyTorch: not supported here (Keras' torch backend has no distribution engine; torch DDP needs
  one process per device), so the option raises a ValueError naming the two that work.

Several machines on JAX: `keras.distribution.initialize()` in every process before building (one
process per host, same script), then the same DataParallel; not tested here
(docs/backends_and_devices.md, "GPU / multi-device").
"""

import contextlib
import json
import os
import weakref

import keras
import numpy as np


def device_count():
    """Devices a data-parallel CycleGAN would use on this backend (1 when there is nothing to split)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return len(keras.distribution.list_devices())
    if backend == "tensorflow":
        return tf_workers() * len(_tf_devices())
    return 1


def _tf_config():
    """TF_CONFIG as (number of machines in its cluster, this task), or (1, {}) without one."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return 1, {}
    try:
        config = json.loads(raw)
        workers = sum(len(config["cluster"].get(job, [])) for job in ("chief", "worker"))
        return workers, config.get("task", {})
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a TensorFlow cluster description ({error}): expected JSON like "
                         '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", '
                         '"index": 0}}') from None


def tf_workers():
    """Machines (tasks) in the TF_CONFIG cluster that TensorFlow's multi-worker training reads; 1 without one."""
    return _tf_config()[0]


def _tf_devices():
    import tensorflow as tf  # backend-specific on purpose, see the module docstring

    gpus = tf.config.list_logical_devices("GPU")
    names = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
    # once a multi-worker strategy runs, the other workers' devices are listed too: keep this task's
    workers, task = _tf_config()
    task = task if workers > 1 else {}
    mine = f"/job:{task.get('type', 'worker')}/replica:0/task:{task.get('index', 0)}/"
    return [name for name in names if "/job:" not in name or mine in name]


def fill_to_multiple(imgs, n_devices):
    """A batch topped up with its own first images to a multiple of n_devices, so that it splits
    evenly across the devices (unchanged when it already does)."""
    missing = -len(imgs) % n_devices
    return np.concatenate([imgs, np.resize(imgs, (missing,) + imgs.shape[1:])]) if missing else imgs


def replica_count(strategy):
    """Replicas a data-parallel CycleGAN splits each batch into (all workers' devices together)."""
    return strategy.num_replicas_in_sync if is_tf_strategy(strategy) else device_count()


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
        strategy = tf_strategy()
        with strategy.scope():
            yield strategy
    else:
        raise ValueError(f"data_parallel=True needs the jax or tensorflow backend (KERAS_BACKEND), "
                         f"not {backend!r}: Keras has no distribution engine for {backend}.")


_STRATEGY = []  # this process's TensorFlow strategy, made once


def tf_strategy():
    """This process's TensorFlow strategy, shared by every data-parallel CycleGAN in it.

    One per process: two strategies over the same devices hand out the same collective keys, and
    their steps then clash (a resumed run builds a second CycleGAN in the same process);
    MultiWorkerMirroredStrategy must be made once anyway.
    """
    import tensorflow as tf

    if not _STRATEGY:
        if tf_workers() > 1:  # several machines: every one runs the same script with its own TF_CONFIG
            _STRATEGY.append(tf.distribute.MultiWorkerMirroredStrategy())
        else:
            _STRATEGY.append(tf.distribute.MirroredStrategy(devices=_tf_devices()))
    return _STRATEGY[0]


def train_on_batch_mirrored(strategy, model, x, y):
    """TensorFlow data parallel: one `train_on_batch` with the batch split across the replicas.

    Keras' `train_on_batch` hands every replica the whole batch (right result, no speed-up), and its
    multi-worker log reduction fails on scalar logs (tensorflow/tensorflow#72388), so the step runs
    in this module's own function: `model.train_step` on every replica, each on its slice; scalar
    logs averaged over the replicas, the combined model's fakes gathered in batch order.
    Returns the logs as numpy arrays.
    """
    model._maybe_symbolic_build(data_batch=(x, y, None))  # what train_on_batch does first
    model.reset_metrics()
    step = _replica_function(strategy, model, "train")
    logs = step(next(iter(_one_batch_split(strategy, (x, y)))))
    return {name: keras.ops.convert_to_numpy(value) for name, value in logs.items()}


def predict_on_batch_mirrored(strategy, model, x):
    """TensorFlow data parallel: `predict_on_batch` with the batch split across the replicas.

    Keras' `predict_on_batch` hands every replica the whole batch and concatenates their outputs
    (n_replicas x the images); here each replica predicts its slice and the slices are gathered in
    order. The batch size must be a multiple of the replica count (`CycleGAN.translate` pads it).
    """
    predict = _replica_function(strategy, model, "predict")
    return keras.ops.convert_to_numpy(predict(next(iter(_one_batch_split(strategy, (x,))))))


_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> {"train"/"predict": (Keras' function it goes with, ours)}
GATHERED_LOGS = ("fake_A", "fake_B")     # per-image logs (models/combined.py): concatenated, not averaged


def _replica_function(strategy, model, kind):
    """A tf.function running `model.<kind>_step` on every replica and reducing across them.

    Made once per compile: Keras drops its own train/predict function when a model is recompiled
    (new loss weights), and this one is remade with it.
    """
    import tensorflow as tf

    (model.make_train_function if kind == "train" else model.make_predict_function)()
    keras_function = model.train_function if kind == "train" else model.predict_function
    cached = _FUNCTIONS.setdefault(model, {}).get(kind)
    if cached is not None and cached[0] is keras_function:
        return cached[1]

    def train(data):
        logs = strategy.run(model.train_step, args=(data,))
        return {name: strategy.gather(value, axis=0) if name in GATHERED_LOGS
                else strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    def predict(data):
        return strategy.gather(strategy.run(model.predict_step, args=(data,)), axis=0)

    function = tf.function(train if kind == "train" else predict, reduce_retracing=True,
                           jit_compile=bool(model.jit_compile))
    _FUNCTIONS[model][kind] = (keras_function, function)
    return function


def _one_batch_split(strategy, data):
    """A distributed dataset of one global batch: each replica gets its slice, in order.

    Every worker holds the same global batch; worker i's input pipeline keeps its own consecutive
    slice and hands it out to its local replicas (one worker: the plain split across its devices).
    """
    import tensorflow as tf

    batch_size = len(keras.tree.flatten(data)[0])

    def worker_slice(context):
        per_replica = context.get_per_replica_batch_size(batch_size)
        per_worker = batch_size // context.num_input_pipelines
        start = context.input_pipeline_id * per_worker
        mine = keras.tree.map_structure(lambda a: a[start:start + per_worker], data)
        return tf.data.Dataset.from_tensor_slices(mine).batch(per_replica)

    return strategy.distribute_datasets_from_function(worker_slice)


def strategy_scope(strategy):
    """The TensorFlow strategy's scope (for a recompile), or a no-op."""
    return strategy.scope() if is_tf_strategy(strategy) else contextlib.nullcontext()


def is_tf_strategy(strategy):
    return strategy is not None and hasattr(strategy, "experimental_distribute_dataset")
