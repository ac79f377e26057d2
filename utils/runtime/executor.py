"""Where a CycleGAN's steps run: on one device, or split across several (data parallel).

`make_executor(data_parallel)` picks one executor when a CycleGAN is built. It owns everything
that depends on the devices: the scope the networks are built and compiled in, topping up a batch
that does not split evenly, and the train calls. `CycleGAN.train_step` calls
`executor.train_on_batch(model, x, y)` and reads as the paper's step, with no device branches.
(Translating is not the executor's: `CycleGAN.translate` calls the generator eagerly,
models.generators.run_generator.)

- `OneDevice`: Keras' own `train_on_batch`. Keras puts the work on the first GPU by itself on all
  three backends, so this is also the GPU case.
- `JaxDataParallel`: `keras.distribution.DataParallel` over all devices
  (`keras.distribution.list_devices()`): weights replicated, each batch split along its first
  axis; XLA inserts the gradient all-reduce. The step computes exactly the global-batch math.
- `TfMirrored`: `tf.distribute.MirroredStrategy` over the visible GPUs, or over all logical CPU
  devices when there is no GPU; `MultiWorkerMirroredStrategy` when TF_CONFIG describes a cluster
  of several machines (each runs the same script on the same global batch and keeps its slice).
  Each replica gets its slice of the batch, gradients are all-reduced.
- PyTorch: no executor (Keras' torch backend has no distribution engine; torch DDP needs one
  process per device), so `data_parallel=True` raises a ValueError naming the two that work.

It names the backends because the engines are backend-specific: Keras 3 offers
`keras.distribution` on JAX only, and TensorFlow's engines are `tf.distribute` strategies
(imported only when TensorFlow data parallel is asked for).

Several machines on JAX: `keras.distribution.initialize()` in every process before building (one
process per host, same script), then the same DataParallel; not tested here
(docs/backends_and_devices.md#gpu--multi-device).
"""

import contextlib
import json
import os
import weakref

import keras
import numpy as np


def make_executor(data_parallel=False):
    """The executor for `CycleGANConfig.data_parallel`: OneDevice, or this backend's data parallel."""
    if not data_parallel:
        return OneDevice()
    backend = keras.backend.backend()
    if backend == "jax":
        return JaxDataParallel()
    if backend == "tensorflow":
        return TfMirrored()
    raise ValueError(f"data_parallel=True needs the jax or tensorflow backend (KERAS_BACKEND), "
                     f"not {backend!r}: Keras has no distribution engine for {backend}.")


def device_count():
    """Devices a data-parallel CycleGAN would use on this backend (1 when there is nothing to split)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return len(keras.distribution.list_devices())
    if backend == "tensorflow":
        return tf_workers() * len(_tf_devices())
    return 1


def fill_to_multiple(imgs, n_devices):
    """A batch topped up with its own first images to a multiple of n_devices, so that it splits
    evenly across the devices (unchanged when it already does)."""
    missing = -len(imgs) % n_devices
    return np.concatenate([imgs, np.resize(imgs, (missing,) + imgs.shape[1:])]) if missing else imgs


class OneDevice:
    """Keras' own calls on the device Keras chose (the first GPU, else the CPU)."""

    n_devices = 1

    def scope(self):
        """The context the networks are built and compiled in."""
        return contextlib.nullcontext()

    def even_batches(self, *batches):
        """Each batch topped up with its own first images to split evenly across the devices (an
        epoch's smaller last batch); unchanged on one device."""
        return tuple(fill_to_multiple(np.asarray(b, np.float32), self.n_devices) for b in batches)

    def train_on_batch(self, model, x, y):
        """One training step of `model` on (x, y): its logs as a dict."""
        return model.train_on_batch(x, y, return_dict=True)


class JaxDataParallel(OneDevice):
    """keras.distribution.DataParallel over every device; it stays set (the trainer reads it at every step)."""

    def __init__(self):
        self.distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
        self.n_devices = len(keras.distribution.list_devices())

    def scope(self):
        keras.distribution.set_distribution(self.distribution)
        return contextlib.nullcontext()


class TfMirrored(OneDevice):
    """TensorFlow's (multi-worker) mirrored strategy; the steps run in this module's own tf.functions."""

    def __init__(self):
        self.strategy = tf_strategy()
        self.n_devices = self.strategy.num_replicas_in_sync   # all workers' devices together

    def scope(self):
        return self.strategy.scope()

    def train_on_batch(self, model, x, y):
        return train_on_batch_mirrored(self.strategy, model, x, y)


# ----------------------------------------------------------------- TensorFlow's engine
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
    build_like_train_on_batch(model, x, y)
    model.reset_metrics()
    step = _replica_train_function(strategy, model)
    logs = step(next(iter(_one_batch_split(strategy, (x, y)))))
    return {name: keras.ops.convert_to_numpy(value) for name, value in logs.items()}


def build_like_train_on_batch(model, x, y):
    """Build `model`'s Keras state for a step on (x, y), as Keras' own `train_on_batch` does first.

    The one call of a Keras-private API in this project: `Model._maybe_symbolic_build(data_batch=...)`
    of Keras' TensorFlow trainer (keras/src/backend/tensorflow/trainer.py), which its `train_on_batch`
    calls before the step. Under a tf.distribute strategy it creates, in the strategy's scope and from
    symbolic tensors, whatever the step would otherwise create inside `strategy.run` (replica
    context): unbuilt layers, the compiled loss and metrics (their trackers), the optimizer's
    variables. Without a strategy it does nothing. No public Keras call does the same (`build`
    skips the compiled loss and metrics; `test_on_batch` also runs a step). Only TensorFlow data
    parallel calls it; tests/test_keras_private.py checks that the pinned Keras (requirements.txt)
    still has it and that it builds what is said here.
    """
    if not hasattr(model, "_maybe_symbolic_build"):
        raise RuntimeError(f"this Keras ({keras.__version__}) has no Model._maybe_symbolic_build, which TensorFlow "
                           "data parallel calls as train_on_batch does: install the pinned keras (requirements.txt)")
    model._maybe_symbolic_build(data_batch=(x, y, None))


_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> (Keras' train function it goes with, ours)


def _replica_train_function(strategy, model):
    """A tf.function running `model.train_step` on every replica and reducing across them.

    Made once per compile: Keras drops its own train function when a model is recompiled (new loss
    weights), and this one is remade with it.
    """
    import tensorflow as tf

    model.make_train_function()
    cached = _FUNCTIONS.get(model)
    if cached is not None and cached[0] is model.train_function:
        return cached[1]

    def train(data):
        logs = strategy.run(model.train_step, args=(data,))
        # per-image logs (the combined model's fakes, models/combined.py) are concatenated, scalars averaged
        return {name: strategy.gather(value, axis=0) if _per_image(strategy, value)
                else strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    function = tf.function(train, reduce_retracing=True, jit_compile=bool(model.jit_compile))
    _FUNCTIONS[model] = (model.train_function, function)
    return function


def _per_image(strategy, value):
    """Whether a replica's log has a batch axis (an image per row), not a scalar."""
    return len(strategy.experimental_local_results(value)[0].shape) > 0


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
