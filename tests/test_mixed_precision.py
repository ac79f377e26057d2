"""Mixed precision on the CPU: float16 with loss scaling (the mode of GPUs without fast bfloat16, e.g. T4),
the device's choice for mixed_precision=True, and the device line the training prints."""

import keras
import numpy as np
import pytest

from models import CycleGAN
from utils.runtime import devices
from utils.training import checkpoint

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


@pytest.mark.long
def test_loss_scale_state_is_saved_and_restored_by_checkpoints(tmp_path):
    gan = CycleGAN(**TINY, mixed_precision="float16")
    gan.train_step(batch(0), batch(1))
    # as if an overflow had halved the combined scale twice and d_A's had grown once
    gan.combined_optimizer.dynamic_scale.assign(2.0 ** 13)
    gan.combined_optimizer.step_counter.assign(7)
    gan.d_A.optimizer.dynamic_scale.assign(2.0 ** 16)
    path = checkpoint.save(gan, tmp_path)
    value = lambda variable: float(keras.ops.convert_to_numpy(variable))  # noqa: E731

    resumed = checkpoint.restore(path)
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


@pytest.mark.parametrize("fast_bfloat16, expected, kept", [(True, "bfloat16", "bfloat16"), (False, None, False)])
def test_true_on_the_cpu_is_bfloat16_only_with_its_instructions_and_the_config_keeps_the_choice(
        monkeypatch, fast_bfloat16, expected, kept):
    assert devices.gpu() is None   # the tests hide GPUs (conftest.py)
    monkeypatch.setattr(devices, "cpu_runs_bfloat16_fast", lambda: fast_bfloat16)
    assert devices.mixed_precision_dtype(True) == expected
    gan = CycleGAN(**TINY, mixed_precision=True)
    assert gan.config.mixed_precision == kept and gan.compute_dtype == expected
    assert gan.g_AB.layers[1].compute_dtype == (expected or "float32")
    assert not isinstance(gan.combined_optimizer, keras.optimizers.LossScaleOptimizer)
    assert devices.mixed_precision_dtype("bfloat16") == "bfloat16"   # asked for by name: always granted
    with pytest.raises(ValueError, match="mixed_precision"):
        CycleGAN(**TINY, mixed_precision="float8")


CPUINFO = "processor\t: {n}\nvendor_id\t: SomeVendor\nflags\t\t: fpu sse2 avx2 fma{extra}\n\n"


@pytest.mark.parametrize("extra, fast", [("", False), (" avx512f avx512_vnni", False), (" avx512_bf16", True),
                                         (" amx_bf16 amx_tile", True)])
def test_the_cpu_runs_bfloat16_fast_only_with_avx512_bf16_or_amx(tmp_path, extra, fast):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(n=0, extra=extra) + CPUINFO.format(n=1, extra=extra))
    assert devices.cpu_runs_bfloat16_fast(cpuinfo) is fast
    assert devices.cpu_runs_bfloat16_fast(tmp_path / "absent") is False   # macOS, Windows: float32 is safe


def test_training_on_a_cpu_without_bfloat16_says_so():
    slow_cpu, t4 = dict(device=None, cpu_bfloat16=False), {"name": "Tesla T4", "compute_capability": (7, 5)}
    warning = devices.precision_warning("bfloat16", "bfloat16", **slow_cpu)
    assert warning.startswith("warning: this CPU has no bfloat16 instructions") and "--mixed-precision" in warning
    assert devices.precision_warning(True, None, **slow_cpu).startswith("mixed precision off")
    assert devices.precision_warning(False, None, **slow_cpu) is None
    assert devices.precision_warning("float16", "float16", **slow_cpu) is None
    assert devices.precision_warning("bfloat16", "bfloat16", device=None, cpu_bfloat16=True) is None
    assert devices.precision_warning("bfloat16", "bfloat16", device=t4, cpu_bfloat16=False) is None   # a GPU


@pytest.mark.long
def test_train_prints_the_warning_on_a_cpu_without_bfloat16(monkeypatch, tmp_path, capsys):
    from utils.training.trainer import train
    monkeypatch.setattr(devices, "cpu_runs_bfloat16_fast", lambda: False)
    train(CycleGAN(**TINY, mixed_precision="bfloat16"), "synthetic_apple2orange", data_root=tmp_path / "data",
          run_root=tmp_path / "runs", max_steps=1, progress=False)
    printed = capsys.readouterr().out
    assert "training on CPU (no GPU found), mixed precision bfloat16" in printed
    assert "warning: this CPU has no bfloat16 instructions" in printed


def test_the_kernels_are_chosen_per_workload_and_cpu_and_the_users_choice_is_kept():
    from utils.runtime.onednn import (CHOSEN_FOR, VARIABLE, cpu_has_avx512, prefer_onednn, stack_generator_calls,
                               translation_side_limit)
    for machine in ("x86_64", "AMD64"):
        environ = {}
        assert prefer_onednn("training", environ, machine, avx512=False) == "1" and environ[CHOSEN_FOR] == "training"
        # a translating entry point, after `utils.cli.quiet()` chose for training: Eigen without AVX-512
        assert prefer_onednn("translation", environ, machine, avx512=False) == "0"
        assert prefer_onednn("translation", {}, machine, avx512=True) == "1"
    assert prefer_onednn("translation", {VARIABLE: "1"}, "x86_64", avx512=False) == "1"   # the user's own value
    assert prefer_onednn("training", {VARIABLE: "0"}, "x86_64") == "0"
    environ = {}
    assert prefer_onednn("training", environ, "arm64") is None and environ == {}
    with pytest.raises(ValueError, match="workload"):
        prefer_onednn("inference", {}, "x86_64")
    # a process that trains with oneDNN on an AVX2-only CPU caps the side of what it translates
    assert translation_side_limit({VARIABLE: "1"}, "x86_64", avx512=False) == 512
    assert translation_side_limit({VARIABLE: "1"}, "x86_64", avx512=True) is None
    assert translation_side_limit({VARIABLE: "0"}, "x86_64", avx512=False) is None
    assert translation_side_limit({VARIABLE: "1", "KERAS_BACKEND": "jax"}, "x86_64", avx512=False) is None
    # the same process stacks each generator's translations into one batch (models/combined.py), and only it
    assert stack_generator_calls({VARIABLE: "1"}, "x86_64", avx512=False) is True
    assert not stack_generator_calls({VARIABLE: "1"}, "x86_64", avx512=True)
    assert not stack_generator_calls({VARIABLE: "0"}, "x86_64", avx512=False)
    assert not stack_generator_calls({VARIABLE: "1"}, "arm64", avx512=False)
    # oneDNN's own ISA limit makes an AVX-512 CPU an AVX2 one
    assert cpu_has_avx512(environ={"ONEDNN_MAX_CPU_ISA": "AVX2"}) is False


def test_cyclegan_cpu_kind_makes_every_choice_as_on_that_cpu(tmp_path, monkeypatch):
    """CYCLEGAN_CPU_KIND (how docs/testing.md runs the suite as on the other CPU kind) replaces the machine's
    flags for each decision read from the CPU; a cpuinfo file named by a test still wins."""
    from utils.runtime.onednn import CPU_KIND_VARIABLE, VARIABLE, cpu_flags, cpu_has_avx512, stack_generator_calls
    for kind, avx512 in (("avx2", False), ("AVX512", True)):
        environ = {CPU_KIND_VARIABLE: kind, VARIABLE: "1"}
        assert cpu_has_avx512(environ=environ) is avx512
        assert stack_generator_calls(environ, "x86_64") is (not avx512)
        monkeypatch.setenv(CPU_KIND_VARIABLE, kind)
        assert devices.cpu_runs_bfloat16_fast() is avx512
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(n=0, extra=" avx512f"))
    assert cpu_has_avx512(cpuinfo, environ={CPU_KIND_VARIABLE: "avx2"}) is True
    with pytest.raises(ValueError, match="CYCLEGAN_CPU_KIND='sse'"):
        cpu_flags(environ={CPU_KIND_VARIABLE: "sse"})


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
