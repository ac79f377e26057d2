"""The Keras-private API this project calls, checked against the installed Keras.

There is one: `Model._maybe_symbolic_build(data_batch=...)` of Keras' TensorFlow trainer, called by
utils/runtime/executor.py's `build_like_train_on_batch` (TensorFlow data parallel) as Keras' own
`train_on_batch` does first. A Keras release that renames it, changes its arguments or stops
building with it fails here, with the Keras version and the function named, rather than deep in a
data-parallel run. The pinned Keras is requirements.txt's.
"""

import inspect

import keras
import numpy as np
import pytest

from utils.runtime.executor import build_like_train_on_batch

WHERE = (f"Keras {keras.__version__}: utils/runtime/executor.py build_like_train_on_batch calls the Keras-private "
         "Model._maybe_symbolic_build(data_batch=(x, y, sample_weight))")

tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                     reason="Model._maybe_symbolic_build is the TensorFlow trainer's; only "
                                            "TensorFlow data parallel calls it")


@tensorflow_only
def test_the_private_method_exists_and_takes_data_batch():
    method = getattr(keras.Model, "_maybe_symbolic_build", None)
    assert method is not None, f"{WHERE}: this Keras has no such method"
    parameters = inspect.signature(method).parameters
    assert "data_batch" in parameters, f"{WHERE}: its parameters are now {list(parameters)}"


@tensorflow_only
def test_keras_train_on_batch_still_builds_with_it():
    """Our wrapper does what Keras' train_on_batch does first: if Keras builds differently now, copy that."""
    source = inspect.getsource(keras.Model.train_on_batch)
    assert "self._maybe_symbolic_build(data_batch=(x, y, sample_weight))" in source, (
        f"{WHERE}: Keras' own train_on_batch no longer starts with that call; see what it does now "
        "(keras/src/backend/tensorflow/trainer.py) and do the same in build_like_train_on_batch")


@tensorflow_only
def test_the_wrapper_builds_the_model_its_loss_metrics_and_optimizer_under_a_strategy():
    """Under a tf.distribute strategy (the only place it is called) an unbuilt, compiled model comes
    out built: its layers, compiled loss, metrics and optimizer variables exist before any step."""
    import tensorflow as tf

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = keras.Sequential([keras.layers.Dense(3), keras.layers.Dense(2)])   # no input shape: unbuilt
        model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = np.zeros((4, 5), "float32"), np.zeros((4, 2), "float32")
    assert not model.built and not model.optimizer.built

    build_like_train_on_batch(model, x, y)

    assert model.built, f"{WHERE}: the model is not built after it"
    assert [tuple(w.shape) for w in model.trainable_weights] == [(5, 3), (3,), (3, 2), (2,)], WHERE
    assert model.optimizer.built and model.optimizer.variables, f"{WHERE}: the optimizer is not built after it"
    metric_variables = [v for m in model.metrics for v in m.variables]
    assert metric_variables, f"{WHERE}: the compiled metrics were not built (model.metrics: {model.metrics})"
    assert "mae" in [m.name for m in model.metrics[-1].metrics], f"{WHERE}: the compiled 'mae' metric is missing"

    # and the step then runs in the strategy's replica context without creating anything new
    n_variables = len(model.variables) + len(model.optimizer.variables)
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and len(model.variables) + len(model.optimizer.variables) == n_variables


def test_a_keras_without_it_is_a_clear_error():
    class NoPrivateBuild:
        pass

    with pytest.raises(RuntimeError, match=r"has no Model\._maybe_symbolic_build.*install the pinned keras"):
        build_like_train_on_batch(NoPrivateBuild(), None, None)
