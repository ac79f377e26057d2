"""The benchmark scripts run and report what they claim (tiny networks; the figures are not checked)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_train

ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(tmp_path, script, *args):
    """Run benchmarks/<script> with `args` and --json-out; once it succeeded, (what it printed, the JSON)."""
    out = tmp_path / f"{Path(script).stem}.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json-out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout, json.loads(out.read_text())


@pytest.mark.long
def test_bench_train_reports_a_step_translation_flops_and_memory(tmp_path):
    printed, report = run_benchmark(tmp_path, "bench_train.py", "--configs", "smoke", "--iters", "2", "--warmup", "1")
    assert "| smoke |" in printed  # the table
    assert report["meta"]["matmul_peak_gflops"] > 0 and report["meta"]["backend"]
    (result,) = report["ours"]["smoke"]
    assert len(result["step_s"]) == 2 and min(result["step_s"]) > 0
    assert result["first_step_s"] > 0 and result["translate_s_median"] > 0
    assert result["traces_at_end"] == result["traces_after_warmup"]  # no retrace while timing
    assert 0 < result["import_rss_mib"] < result["peak_rss_mib"]
    (row,) = report["rows"]
    assert row["gflop_per_step"] > row["translate_gflop"] > 0


@pytest.mark.long
def test_bench_levers_times_each_lever_against_the_default_in_fresh_processes(tmp_path):
    printed, report = run_benchmark(tmp_path, "bench_levers.py", "--config", "smoke", "--levers",
                                    "default,keras_ops_norm,fused_norm_batch1", "--rounds", "1", "--iters", "1",
                                    "--warmup", "0")
    assert set(report["rows"]) == {"default", "keras_ops_norm", "fused_norm_batch1"}
    assert {run["lever"] for runs in report["runs"].values() for run in runs} == set(report["rows"])
    assert all(row["s_per_step"] > 0 and row["first_step_s"] > 0 for row in report["rows"].values())
    assert "1.00x the default" in printed


def test_an_unknown_lever_names_the_known_ones():
    from benchmarks import levers
    with pytest.raises(ValueError, match="unknown lever 'channels_first'; choose from default, keras_ops_norm"):
        levers.before_import("channels_first")


def test_layer_flops_are_counted_from_the_shapes():
    import keras

    from benchmarks.flops import model_flops
    x = keras.Input((16, 16, 3))
    y = keras.layers.Conv2D(8, 3, padding="same")(x)                              # 16x16x8 out, 3x3x3 kernel
    y = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same")(y)           # 16x16x8 in -> 32x32x2
    model = keras.Model(x, keras.layers.Dense(5)(keras.layers.Flatten()(y)))       # 2048 -> 5
    assert model_flops(model) == 2 * 16 * 16 * 8 * 9 * 3 + 2 * 16 * 16 * 8 * 9 * 2 + 2 * 2048 * 5


def test_step_flops_count_every_network_pass():
    """6 generator passes (4 without identity) x3 for backward; D: 2 x 2 (input grads) + 4 x 3."""
    from benchmarks.flops import model_flops, step_flops, translate_flops
    from models import CycleGAN

    gan = CycleGAN(**bench_train.CONFIGS["smoke"][0])
    f_g, f_d = model_flops(gan.g_AB), model_flops(gan.d_A)
    assert translate_flops(gan, batch_size=3) == 3 * f_g > 0
    assert step_flops(gan) == 18 * f_g + 16 * f_d
    gan.set_loss_weights(lambda_id=0.0)
    assert step_flops(gan, batch_size=2) == 2 * (12 * f_g + 16 * f_d)


def test_gpu_check_runs_both_backends_both_precisions_the_official_code_and_the_memory_configs():
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    commands = [line for line in run.stdout.splitlines() if line.startswith("+ ")]
    for backend in ("jax", "torch"):
        speed = [c for c in commands if f"--backend {backend}" in c and "book_unet128,book_resnet256" in c]
        assert len(speed) == 2 and sum("--mixed-precision" in c for c in speed) == 1, speed
        assert any(f"--backend {backend}" in c and "book_resnet256,book_resnet512" in c for c in commands)
    official = [c for c in commands if "--official-script benchmarks/official_gpu.py" in c]
    assert len(official) == 2   # once for the speed configs, once for memory: not again per backend and precision


def test_official_gpu_harness_loads_the_shared_official_options():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "official_gpu.py"), "--help"],
                         capture_output=True, text=True, timeout=60)
    if "harness is not at" in run.stderr:
        pytest.skip("no shared/bench beside the repository")
    assert run.returncode == 0 and "--netG" in run.stdout and "--size" in run.stdout


@pytest.mark.long
def test_gpu_check_tiny_runs_the_whole_script_on_the_cpu(tmp_path):
    env = {**os.environ, "BACKENDS": "tensorflow", "PYTHON": sys.executable, "OUT": str(tmp_path)}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--tiny"], capture_output=True,
                         text=True, timeout=1200, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speed_tensorflow_fp32.json", "speed_tensorflow_mixed.json"]
    mixed = json.loads((tmp_path / "speed_tensorflow_mixed.json").read_text())
    from utils.runtime import devices
    assert mixed["ours"]["smoke"][0]["compute_dtype"] == devices.mixed_precision_dtype(True)   # the CPU's pick
    assert "| speed_tensorflow_mixed | smoke | cpu |" in run.stdout   # the summary table


@pytest.mark.long
def test_bench_full_resolution_reports_seconds_and_memory(tmp_path):
    printed, report = run_benchmark(tmp_path, "bench_full_resolution.py", "--sizes", "48", "--models", "demo",
                                    "--repeats", "1", "--kernels", "chosen", "eigen", "--isa", "AVX2")
    assert "| demo | eigen (TF_ENABLE_ONEDNN_OPTS=0) | 48 x 48 |" in printed and "load average before" in printed
    chosen, eigen = report["rows"]
    assert chosen["kernels"] == "chosen" and report["isa_limit"] == "AVX2"
    # what the child's TensorFlow loaded with, after `utils.cli.quiet()` chose for training: translating on an AVX2
    # CPU (or not x86) never runs oneDNN
    assert chosen["onednn"] in ("0", None)
    assert all(row["translated_hw"] == [48, 48] for row in (chosen, eigen))   # the whole image, no cap
    assert all(row["seconds"] > 0 and row["peak_rss_mib"] > row["image_mib"] >= 0 for row in (chosen, eigen))


def _write_images(folder, n, size, seed):
    from PIL import Image
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)).save(folder / f"{i:03d}.jpg")


@pytest.mark.long
def test_gpu_showcase_tiny_trains_writes_a_model_folder_that_loads_and_translates(tmp_path):
    data, out = tmp_path / "monet256", tmp_path / "out"
    for split, n, seed in (("trainA", 6, 0), ("trainB", 6, 1), ("testB", 2, 2)):
        _write_images(data / split, n, 40, seed)
    env = {**os.environ, "PYTHON": sys.executable}
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_showcase.sh"), "--tiny", "--data", str(data),
                          "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["grid.png", "monet2photo_256/config.json", "monet2photo_256/g_AB.weights.h5",
                     "monet2photo_256/g_BA.weights.h5", "showcase.json"]   # the device returns <= 8 files
    assert all((out / f).stat().st_size < 16 * 2 ** 20 for f in files)
    report = json.loads((out / "showcase.json").read_text())
    assert report["status"] == "ok" and report["steps"] > 0 and report["losses_last_10_percent"]["g_loss"] > 0
    schedule = report["schedule"]
    assert schedule["constant_steps"] > 0 and schedule["decay_steps"] > 0
    assert report["steps"] <= schedule["constant_steps"] + schedule["decay_steps"]
    assert 0 < report["seconds_per_step_median"] and 10 < report["train_seconds"] < 20.5   # within the 20 s
    assert report["data"] == {"monets": 6, "photos": 6, "folder": "monet256", "grid_photos": ["000.jpg", "001.jpg"]}

    from PIL import Image
    assert Image.open(out / "grid.png").size == (2 * 32, 3 * 32)   # photos, Monets, reconstructions
    from utils.inference.trained_model import load_generators
    trained = load_generators(out / "monet2photo_256")
    assert trained.config.generator_type == "resnet" and trained.config.lambda_id == 5
    assert trained.config.resnet_upsampling == "bilinear"   # the recipe's upsampling (issue #33's A/B)
    photo = np.random.default_rng(3).uniform(-1, 1, (1, 48, 64, 3)).astype(np.float32)
    monet = np.asarray(trained.g_BA.predict_on_batch(photo))
    assert monet.shape == photo.shape and np.all(np.isfinite(monet)) and np.abs(monet).max() <= 1


def test_gpu_showcase_schedule_is_constant_for_half_the_time_then_decays_over_the_steps_that_fit():
    from benchmarks.gpu_showcase import FittedSchedule
    schedule = FittedSchedule(1.0, seconds=10, start=0, warmup=2)
    assert schedule.learning_rate(0, 0.0) == 1.0 and schedule.learning_rate(1, 0.9) == 1.0
    assert schedule.learning_rate(2, 1.0) == 1.0          # warm: the speed is measured from here
    assert schedule.learning_rate(9, 4.9) == 1.0
    # the half-time: 8 steps in 4 s since warm-up, 0.5 s a step -> 0.98 x 5 s / 0.5 s = 9 decay steps
    assert schedule.learning_rate(10, 5.0) == 1.0 and schedule.decay_steps == 9
    assert schedule.learning_rate(13, 6.5) == pytest.approx(1 - 3 / 9)
    assert schedule.learning_rate(19, 9.5) is None and schedule.stopped_by == "schedule"
    late = FittedSchedule(1.0, seconds=10, start=0, warmup=2)
    for step, now in ((0, 0.0), (2, 1.0), (10, 5.0)):
        late.learning_rate(step, now)
    assert late.learning_rate(11, 10.0) is None and late.stopped_by.startswith("deadline")


def test_gpu_showcase_crops_are_random_windows_flipped_and_in_model_range():
    from benchmarks.gpu_showcase import load_size, random_crops
    assert load_size(256) == 286 and load_size(32) == 36
    images = np.arange(2 * 6 * 6 * 3, dtype=np.uint8).reshape(2, 6, 6, 3)
    batch = random_crops(images, 64, 4, np.random.default_rng(0))
    assert batch.shape == (64, 4, 4, 3) and batch.dtype == np.float32 and -1 <= batch.min() <= batch.max() <= 1
    pixels = np.rint((batch + 1) * 127.5).astype(int)
    rows_ascending = (np.diff(pixels[:, 0, :, 0], axis=1) > 0).all(axis=1)
    assert 0 < rows_ascending.sum() < 64   # some windows flipped left-right, some not
    assert len({tuple(p[0, 0]) for p in pixels}) > 4   # several positions and images
