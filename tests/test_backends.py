"""The training step wastes no work on any backend: one forward pass, no retrace, no idle identity.

Runs under whatever KERAS_BACKEND is set (`make test`: TensorFlow; `make test-backends`: JAX and
PyTorch). Timing is not tested here; it lives in benchmarks/bench_train.py.
"""

import keras
import numpy as np
import pytest

from models import CycleGAN
from models.augment import DiffAugment
from models.config import DIFF_AUGMENT_PAPER
from test_networks import gradient   # d sum(fn(x) * weights) / dx with the backend's own autodiff

TINY = dict(input_dim=(32, 32, 3), generator_type="resnet", n_resnet_blocks=1, gen_n_filters=4,
            disc_n_filters=4, buffer_max_length=2, seed=2)
EAGER = keras.backend.backend() == "torch"  # PyTorch runs the forward pass on every step


def batch(seed, n=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 32, 32, 3)).astype("float32")


def count_calls(model):
    """Wrap `model.call` so that every run (eager) or trace (graph) of its forward pass is counted."""
    calls = []
    original = model.call

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.call = counted
    return calls


@pytest.mark.parametrize("stack_calls", [False, True])
def test_a_step_translates_each_image_once_and_never_retraces(stack_calls):
    """Both ways of calling the generators (models/combined.py, 4.), forced here whatever the CPU: g_AB
    translates fake_B, reconstr_B and id_B in 3 calls, or in 2 when img_A and img_B are stacked."""
    gan = CycleGAN(**TINY)
    gan.combined.stack_calls = stack_calls
    g_AB_calls = count_calls(gan.g_AB)
    gan.g_AB.predict_on_batch = gan.g_BA.predict_on_batch = None  # the book's second translation is gone
    per_step = 2 if stack_calls else 3
    gan.train_step(batch(0), batch(1))
    traces, calls = gan.combined.trace_count, len(g_AB_calls)
    assert calls >= per_step  # more if the backend traces the step more than once
    for i in range(3):
        gan.train_step(batch(2 + i), batch(5 + i))
    if EAGER:
        assert gan.combined.trace_count == traces + 3          # one forward pass per step
        assert len(g_AB_calls) == calls + 3 * per_step
    else:
        assert gan.combined.trace_count == traces              # same shapes: no retrace
        assert len(g_AB_calls) == calls


def test_optimizers_are_built_before_the_first_step_so_it_traces_once():
    """A TensorFlow train function that creates variables (Adam's moments) traces twice."""
    gan = CycleGAN(**TINY)
    assert all(optimizer.built for optimizer in gan.optimizers.values())
    assert gan.combined.trace_count == 0
    gan.train_step(batch(0), batch(1))
    if keras.backend.backend() == "tensorflow":
        assert gan.combined.trace_count == 1
    else:  # JAX and PyTorch also run the forward pass once symbolically, to build the model
        assert gan.combined.trace_count == 2


@pytest.mark.long
def test_identity_branch_is_skipped_when_its_weight_is_zero():
    gan = CycleGAN(**{**TINY, "lambda_id": 0.0})
    outputs = gan.combined({"img_A": batch(0), "img_B": batch(1)}, training=True)
    assert set(outputs) == {"valid_A", "valid_B", "reconstr_A", "reconstr_B", "fake_A", "fake_B"}
    losses = gan.train_step(batch(0), batch(1))
    assert losses["id_A"] == losses["id_B"] == 0.0
    assert losses["g_loss"] == pytest.approx(losses["valid_A"] + losses["valid_B"]
                                             + 10 * (losses["reconstr_A"] + losses["reconstr_B"]), rel=1e-4)
    gan.set_loss_weights(lambda_id=1.0)  # and back on: computed again
    assert gan.train_step(batch(2), batch(3))["id_A"] > 0


def test_inference_outputs_have_six_names_and_the_fakes_equal_the_generators():
    gan = CycleGAN(**TINY)
    x = {"img_A": batch(0), "img_B": batch(1)}
    assert set(gan.combined(x)) == {"valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B"}
    outputs = gan.combined(x, training=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs["fake_B"]), gan.translate(x["img_A"]), atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs["fake_A"]), gan.translate(x["img_B"], "BtoA"),
                               atol=1e-5)


def test_mixed_precision_keeps_float32_weights_outputs_and_losses():
    gan = CycleGAN(**{**TINY, "mixed_precision": "bfloat16"})
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    assert gan.g_AB.layers[1].compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in gan.g_AB.weights + gan.d_A.weights)
    assert gan.translate(batch(0)).dtype == np.float32
    losses = gan.train_step(batch(0), batch(1))
    assert all(np.isfinite(value) for value in losses.values())


def test_diff_augment_passes_gradients_and_trains_the_right_networks():
    """DiffAugment (models/augment.py) is keras.ops and keras.random only: its gradient reaches the input
    on every backend, and with it a step moves all four networks, the combined step only the generators."""
    layer = DiffAugment(DIFF_AUGMENT_PAPER, seed=0)
    grad = gradient(lambda images: layer(images, training=True), batch(0, n=2))
    assert grad.shape == (2, 32, 32, 3) and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0

    gan = CycleGAN(**{**TINY, "diff_augment": DIFF_AUGMENT_PAPER})

    def snapshot():
        return {name: [keras.ops.convert_to_numpy(w).copy() for w in getattr(gan, name).weights]
                for name in ("g_AB", "g_BA", "d_A", "d_B")}

    def moved(before):
        return {name for name, weights in snapshot().items()
                if any(not np.array_equal(b, a) for b, a in zip(before[name], weights))}

    before = snapshot()
    losses = gan.train_step(batch(0), batch(1))
    assert all(np.isfinite(value) for value in losses.values())
    assert moved(before) == {"g_AB", "g_BA", "d_A", "d_B"}
    valid = np.ones((1,) + gan.disc_patch, "float32")
    before = snapshot()
    gan.combined.train_on_batch([batch(2), batch(3)], [valid, valid, batch(2), batch(3), batch(2), batch(3)])
    assert moved(before) == {"g_AB", "g_BA"}
