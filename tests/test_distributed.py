"""Data parallel (utils/runtime/executor.py): two logical CPU devices give the weights of one device.

`CycleGAN(data_parallel=True)` splits each batch across the devices with the backend's own engine
(JAX: keras.distribution.DataParallel; TensorFlow: tf.distribute.MirroredStrategy). Two full
training step with a global batch of 2 on 2 devices must move every network's weights as the same
step with batch 2 on one device does, within float tolerance: the gradient sums are split
differently, and Adam's first step, lr * g / (|g| + eps), turns a rounding difference of a
gradient near eps into a visible one, so the check is on the whole update, relative to its size. Devices are fixed when a backend starts, so each run is its own process.
"""

import json
import os
import socket
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
if keras.backend.backend() == "tensorflow" and "TF_CONFIG" not in os.environ:  # two logical CPU devices
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from models import CycleGAN
from utils.runtime.executor import device_count

parallel = sys.argv[1] == "parallel"
gan = CycleGAN(input_dim=(32, 32, 3), generator_type="resnet", n_resnet_blocks=1, gen_n_filters=4,
               disc_n_filters=4, buffer_max_length=3, seed=5, data_parallel=parallel)
rng = np.random.default_rng(0)
def weights():
    return {f"{net}/{i}": keras.ops.convert_to_numpy(w).copy()
            for net in ("g_AB", "g_BA", "d_A", "d_B") for i, w in enumerate(getattr(gan, net).weights)}
before = weights()
translated = gan.translate(rng.uniform(-1, 1, (3, 32, 32, 3)).astype("float32"))   # 3: not a multiple of 2
losses = [gan.train_step(rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"),
                         rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"))]
np.savez(sys.argv[2], translated=translated,
         **{key: value - before[key] for key, value in weights().items()})  # the updates
print("RESULT " + json.dumps({"devices": gan.n_devices, "visible": device_count(), "losses": losses}))
"""


def two_device_env(**extra):
    """The environment of a test process: this backend, two host devices for JAX, the project importable."""
    return {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "TF_CPP_MIN_LOG_LEVEL": "3",
            "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip(),
            "PYTHONPATH": str(ROOT), **extra}


def run_scripts(jobs, timeout=600):
    """Run each job {name: (script, args, env)} in its own process, side by side (tracing is mostly
    one core); returns the dict each printed on its RESULT line, by name."""
    procs = {name: subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, (script, args, env) in jobs.items()}
    results = {}
    try:
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, stderr[-4000:]
            line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
            results[name] = json.loads(line[len("RESULT "):])
    finally:
        for proc in procs.values():  # a failed or timed-out job stops the others (a worker would wait forever)
            if proc.poll() is None:
                proc.kill()
    return results


def run_both(tmp_path, modes=("single", "parallel")):
    """The single-device and the data-parallel step: (result, updates) for each mode."""
    env = two_device_env()
    results = run_scripts({mode: (SCRIPT, [mode, str(tmp_path / f"{mode}.npz")], env) for mode in modes})
    both = {mode: (result, np.load(tmp_path / f"{mode}.npz")) for mode, result in results.items()}
    return both["single"], both.get("parallel")


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(tmp_path):
    """Two TensorFlow worker processes on this machine (a cluster of two 'machines' on 127.0.0.1),
    one CPU device each, same script, same global batch; returns worker 0's and worker 1's results."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    jobs = {index: (SCRIPT, ["parallel", str(tmp_path / f"worker{index}.npz")],
                    two_device_env(KERAS_BACKEND="tensorflow", TF_CONFIG=json.dumps(
                        {"cluster": cluster, "task": {"type": "worker", "index": index}})))
            for index in range(2)}
    results = run_scripts(jobs, timeout=300)
    return [(results[index], np.load(tmp_path / f"worker{index}.npz")) for index in range(2)]


def assert_same_step(single, single_update, parallel, parallel_update):
    """The data-parallel step moved every network as the one-device step did, with the same losses."""
    for net in NETWORKS:
        keys = [key for key in single_update.files if key.startswith(net + "/")]
        want = np.concatenate([single_update[key].ravel() for key in keys])
        have = np.concatenate([parallel_update[key].ravel() for key in keys])
        assert np.linalg.norm(want) > 0, net                     # the step moved this network
        off = np.abs(have - want) > 1e-5                          # lr is 2e-4: a flip costs up to 4e-4
        relative = np.linalg.norm(have - want) / np.linalg.norm(want)
        assert off.mean() < 0.01 and relative < 0.05, f"{net}: {off.sum()} of {off.size} weights off, {relative=:.3g}"
    assert single_update["translated"].shape == parallel_update["translated"].shape == (3, 32, 32, 3)
    np.testing.assert_allclose(parallel_update["translated"], single_update["translated"], atol=1e-5)
    for name, value in single["losses"][0].items():
        assert parallel["losses"][0][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


@pytest.mark.long
@pytest.mark.skipif(keras.backend.backend() == "torch", reason="no data-parallel engine in Keras' torch backend")
def test_two_devices_with_global_batch_2_equal_one_device_with_batch_2(tmp_path):
    (single, single_update), (parallel, parallel_update) = run_both(tmp_path)
    assert single["devices"] == 1 and parallel["devices"] == 2 == parallel["visible"]
    assert_same_step(single, single_update, parallel, parallel_update)


@pytest.mark.long
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF_CONFIG multi-worker is TensorFlow's")
def test_two_workers_with_global_batch_2_equal_one_device_with_batch_2(tmp_path):
    """TensorFlow's multi-worker engine (MultiWorkerMirroredStrategy from TF_CONFIG), two processes
    talking over 127.0.0.1: what several machines do, each with one device."""
    (single, single_update), _ = run_both(tmp_path, modes=("single",))
    for worker, update in run_two_workers(tmp_path):
        assert worker["devices"] == 2 == worker["visible"]
        assert_same_step(single, single_update, worker, update)


TRAIN_SCRIPT = r"""
import json, sys
import keras
import numpy as np
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from utils.datasets.synthetic import ensure_dataset
from utils.training import run_folder as layout
from utils.training.logs import read_losses
from utils.training.trainer import load_run, train

root = sys.argv[1]
ensure_dataset("synthetic_apple2orange", data_root=root + "/data", size=32, n_train=5, n_test=2, seed=0)
config = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, n_resnet_blocks=1, generator_type="resnet",
              buffer_max_length=3, epochs=1, decay_epochs=1, data_parallel=True)
common = dict(data_root=root + "/data", sample_interval=2, checkpoint_interval=2, progress=False)
run = train(config, "synthetic_apple2orange", run_root=root + "/run", batch_size=2, max_steps=3, **common)
train(None, None, run, resume=True, max_steps=4, **common)   # resumes from its last checkpoint
losses = read_losses(run / layout.LOSSES_CSV)
gan = load_run(run)
loaded_step = gan.step
gan.set_loss_weights(lambda_id=0)   # a recompile: the data-parallel step is remade with it
x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
after_recompile = gan.train_step(x, x[::-1])
print("RESULT " + json.dumps({"after_recompile": after_recompile, "steps": losses["step"].astype(int).tolist(),
                              "epochs": losses["epoch"].astype(int).tolist(), "finite": bool(np.isfinite(losses["g_loss"]).all()), "devices": gan.n_devices,
                              "grids": [p.name for p in layout.grid_paths(run)], "model_step": loaded_step}))
"""


@pytest.mark.long
@pytest.mark.skipif(keras.backend.backend() == "torch", reason="no data-parallel engine in Keras' torch backend")
def test_training_loop_runs_data_parallel_with_an_uneven_last_batch_and_resumes(tmp_path):
    """5 images, batch 2 on 2 devices: the epoch's last batch (1 image) is topped up to split evenly;
    checkpoints of the data-parallel networks load back into a data-parallel CycleGAN."""
    result = run_scripts({"train": (TRAIN_SCRIPT, [str(tmp_path)], two_device_env())})["train"]
    assert result["devices"] == 2 and result["finite"]
    assert result["steps"] == [1, 2, 3, 4] and result["epochs"] == [0, 0, 0, 1]   # 3 batches an epoch: 2 + 2 + 1
    assert result["model_step"] == 4 and "grid_0000004.png" in result["grids"]
    after = result["after_recompile"]
    assert after["id_A"] == after["id_B"] == 0 and np.isfinite(after["g_loss"]) and after["reconstr_A"] > 0


def test_a_batch_size_that_does_not_split_across_the_devices_is_refused(monkeypatch, tmp_path):
    from utils.runtime import executor as distribution
    from utils.training import trainer
    monkeypatch.setattr(distribution, "device_count", lambda: 2)
    config = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, data_parallel=True)
    with pytest.raises(ValueError, match=r"batch_size=3: .*multiple of 2 \(e.g. --batch-size 2\)"):
        trainer.train(config, "synthetic_apple2orange", data_root=tmp_path, run_root=tmp_path / "run", batch_size=3)
    assert not (tmp_path / "run").exists()   # refused before any folder is made


def test_the_last_batch_is_topped_up_with_its_own_images():
    from utils.runtime.executor import fill_to_multiple as _fill_devices
    imgs = np.arange(3 * 2 * 2 * 1, dtype=np.float32).reshape(3, 2, 2, 1)
    assert _fill_devices(imgs, 1) is imgs and _fill_devices(imgs[:2], 2).shape == (2, 2, 2, 1)
    filled = _fill_devices(imgs, 4)
    assert filled.shape == (4, 2, 2, 1) and np.array_equal(filled[:3], imgs) and np.array_equal(filled[3], imgs[0])
    assert np.array_equal(_fill_devices(imgs[:1], 3), np.repeat(imgs[:1], 3, axis=0))


def test_data_parallel_on_torch_is_a_clear_error():
    if keras.backend.backend() != "torch":
        pytest.skip("torch backend only")
    from models import CycleGAN
    with pytest.raises(ValueError, match="jax or tensorflow"):
        CycleGAN(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, data_parallel=True)


def test_tf_config_gives_the_number_of_workers_or_a_clear_error(monkeypatch):
    from utils.runtime.executor import tf_workers
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tf_workers() == 1
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert tf_workers() == 3
    monkeypatch.setenv("TF_CONFIG", "worker=b:1")
    with pytest.raises(ValueError, match=r"TF_CONFIG is not a TensorFlow cluster description .*\"cluster\""):
        tf_workers()
