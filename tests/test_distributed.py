"""Data parallel (utils/distribution.py): two logical CPU devices give the weights of one device.

`CycleGAN(data_parallel=True)` splits each batch across the devices with the backend's own engine
(JAX: keras.distribution.DataParallel; TensorFlow: tf.distribute.MirroredStrategy). Two full
training step with a global batch of 2 on 2 devices must move every network's weights as the same
step with batch 2 on one device does, within float tolerance: the gradient sums are split
differently, and Adam's first step, lr * g / (|g| + eps), turns a rounding difference of a
gradient near eps into a visible one, so the check is on the whole update, relative to its size. Devices are fixed when a backend starts, so each run is its own process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NETWORKS = ("g_AB", "g_BA", "d_A", "d_B")

SCRIPT = r"""
import json, os, sys
import keras
import numpy as np
if keras.backend.backend() == "tensorflow":  # two logical CPU devices, before TensorFlow starts
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from models import CycleGAN
from utils.distribution import device_count

parallel = sys.argv[1] == "parallel"
gan = CycleGAN(input_dim=(32, 32, 3), generator_type="resnet", n_resnet_blocks=1, gen_n_filters=4,
               disc_n_filters=4, buffer_max_length=3, seed=5, data_parallel=parallel)
rng = np.random.default_rng(0)
def weights():
    return {f"{net}/{i}": keras.ops.convert_to_numpy(w).copy()
            for net in ("g_AB", "g_BA", "d_A", "d_B") for i, w in enumerate(getattr(gan, net).weights)}
before = weights()
losses = [gan.train_step(rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"),
                         rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"))]
np.savez(sys.argv[2], **{key: value - before[key] for key, value in weights().items()})  # the updates
print("RESULT " + json.dumps({"devices": gan.n_devices, "visible": device_count(), "losses": losses}))
"""


def run_both(tmp_path):
    """Run the single-device and the data-parallel process side by side (tracing is mostly one core)."""
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip(),
           "PYTHONPATH": str(ROOT)}
    procs = {mode: subprocess.Popen([sys.executable, "-c", SCRIPT, mode, str(tmp_path / f"{mode}.npz")], env=env,
                                    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for mode in ("single", "parallel")}
    results = {}
    for mode, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-4000:]
        line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
        results[mode] = (json.loads(line[len("RESULT "):]), np.load(tmp_path / f"{mode}.npz"))
    return results["single"], results["parallel"]


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() == "torch", reason="no data-parallel engine in Keras' torch backend")
def test_two_devices_with_global_batch_2_equal_one_device_with_batch_2(tmp_path):
    (single, single_update), (parallel, parallel_update) = run_both(tmp_path)
    assert single["devices"] == 1 and parallel["devices"] == 2 == parallel["visible"]
    for net in NETWORKS:
        keys = [key for key in single_update.files if key.startswith(net + "/")]
        want = np.concatenate([single_update[key].ravel() for key in keys])
        have = np.concatenate([parallel_update[key].ravel() for key in keys])
        assert np.linalg.norm(want) > 0, net                     # the step moved this network
        off = np.abs(have - want) > 1e-5                          # lr is 2e-4: a flip costs up to 4e-4
        relative = np.linalg.norm(have - want) / np.linalg.norm(want)
        assert off.mean() < 0.01 and relative < 0.05, f"{net}: {off.sum()} of {off.size} weights off, {relative=:.3g}"
    for name, value in single["losses"][0].items():
        assert parallel["losses"][0][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_data_parallel_on_torch_is_a_clear_error():
    if keras.backend.backend() != "torch":
        pytest.skip("torch backend only")
    from models import CycleGAN
    with pytest.raises(ValueError, match="jax or tensorflow"):
        CycleGAN(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, data_parallel=True)
