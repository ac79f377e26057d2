"""Mixed precision on the CPU: float16 with loss scaling (the mode of GPUs without fast bfloat16, e.g. T4),
the device's choice for mixed_precision=True, and the device line the training prints."""

import keras
import numpy as np
import pytest

from models import CycleGAN
from models import devices

TINY = dict(input_dim=(32, 32, 3), generator_type="resnet", n_resnet_blocks=1, gen_n_filters=4,
            disc_n_filters=4, buffer_max_length=2, seed=4)


def batch(seed, n=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 32, 32, 3)).astype("float32")


def test_float16_trains_with_loss_scaling_float32_weights_and_finite_losses():
    gan = CycleGAN(**TINY, mixed_precision="float16")
    assert keras.config.dtype_policy().name == "float32"   # the global policy is left as it was
    assert gan.g_AB.layers[1].compute_dtype == "float16" and gan.d_A.layers[1].compute_dtype == "float16"
    for optimizer in gan.optimizers.values():
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    before = [keras.ops.convert_to_numpy(w).copy() for w in gan.g_AB.weights + gan.d_A.weights]
    for step in range(8):
        losses = gan.train_step(batch(step), batch(step + 10))
        assert all(np.isfinite(value) for value in losses.values()), losses
    assert all(w.dtype == "float32" for w in gan.g_AB.weights + gan.d_A.weights + gan.combined.weights)
    # Dynamic loss scaling at work: the first steps overflow float16 at the initial scale 2^15, are
    # skipped and halve it (5 times here); the steps after that update the weights.
    scale = float(keras.ops.convert_to_numpy(gan.combined_optimizer.dynamic_scale))
    applied = int(keras.ops.convert_to_numpy(gan.combined_optimizer.iterations))
    assert scale < 2.0 ** 15 and 1 <= applied < 8, (scale, applied)
    after = [keras.ops.convert_to_numpy(w) for w in gan.g_AB.weights + gan.d_A.weights]
    assert sum(not np.array_equal(a, b) for a, b in zip(before, after)) > len(before) // 2   # it learned
    assert gan.translate(batch(0)).dtype == np.float32


def test_loss_scale_state_is_saved_and_restored_by_checkpoints(tmp_path):
    gan = CycleGAN(**TINY, mixed_precision="float16")
    gan.train_step(batch(0), batch(1))
    # as if an overflow had halved the combined scale twice and d_A's had grown once
    gan.combined_optimizer.dynamic_scale.assign(2.0 ** 13)
    gan.combined_optimizer.step_counter.assign(7)
    gan.d_A.optimizer.dynamic_scale.assign(2.0 ** 16)
    path = gan.save_checkpoint(tmp_path)
    value = lambda variable: float(keras.ops.convert_to_numpy(variable))  # noqa: E731

    resumed = CycleGAN.from_checkpoint(path)
    assert resumed.compute_dtype == "float16" and resumed.config.mixed_precision == "float16"
    for name, optimizer in resumed.optimizers.items():
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer), name
    assert value(resumed.combined_optimizer.dynamic_scale) == 2.0 ** 13
    assert value(resumed.combined_optimizer.step_counter) == 7
    assert value(resumed.d_A.optimizer.dynamic_scale) == 2.0 ** 16
    assert value(resumed.d_B.optimizer.dynamic_scale) == value(gan.d_B.optimizer.dynamic_scale)   # as trained
    # the inner Adam state comes back too, and both go on with the same step
    for name, optimizer in resumed.optimizers.items():
        assert value(optimizer.iterations) == value(gan.optimizers[name].iterations), name
    a, b = gan.train_step(batch(2), batch(3)), resumed.train_step(batch(2), batch(3))
    assert a["g_loss"] == pytest.approx(b["g_loss"], rel=1e-3) and np.isfinite(b["g_loss"])


@pytest.mark.parametrize("capability, expected", [((7, 5), "float16"), ((7, 0), "float16"), ((8, 0), "bfloat16"),
                                                  ((9, 0), "bfloat16"), (None, "float16")])
def test_true_picks_bfloat16_only_where_the_gpu_runs_it_fast(capability, expected):
    gpu = {"name": "some GPU", "compute_capability": capability}
    assert devices.mixed_precision_dtype(True, gpu) == expected
    assert devices.mixed_precision_dtype("float16", gpu) == "float16"
    assert devices.mixed_precision_dtype(False, gpu) is None


def test_true_on_the_cpu_is_bfloat16_and_the_config_keeps_the_choice():
    assert devices.gpu() is None   # the tests hide GPUs (conftest.py)
    assert devices.mixed_precision_dtype(True) == "bfloat16"
    gan = CycleGAN(**TINY, mixed_precision=True)
    assert gan.config.mixed_precision == "bfloat16" and gan.compute_dtype == "bfloat16"
    assert not isinstance(gan.combined_optimizer, keras.optimizers.LossScaleOptimizer)
    with pytest.raises(ValueError, match="mixed_precision"):
        CycleGAN(**TINY, mixed_precision="float8")


def test_the_device_line_names_the_gpu_or_says_cpu():
    assert devices.device_line() == "training on CPU (no GPU found)"
    t4 = {"name": "Tesla T4", "compute_capability": (7, 5)}
    assert devices.device_line(1, "float16", t4) == ("training on GPU 0: Tesla T4 (compute capability 7.5), "
                                                     "mixed precision float16 with loss scaling")
    assert devices.device_line(2, "bfloat16", None) == ("training on CPU (no GPU found), 2 devices, data parallel, "
                                                        "mixed precision bfloat16")


def test_train_py_mixed_precision_flag_names_the_type_or_leaves_it_to_the_device():
    import train as cli
    parse = lambda *flags: cli.model_config(cli.parse_args(["--dataset", "x", *flags])[1]).mixed_precision  # noqa: E731
    assert parse("--mixed-precision") is True and parse() is False
    assert parse("--mixed-precision", "float16", "--jit", "off") == "float16"
    assert parse("--mixed-precision", "bfloat16") == "bfloat16"
