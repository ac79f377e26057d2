"""The benchmark scripts run and report what they claim (tiny networks; the figures are not checked)."""

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import bench_train

ROOT = Path(__file__).resolve().parents[1]


def test_bench_train_reports_a_step_translation_flops_and_memory(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), "--configs", "smoke",
                          "--iters", "2", "--warmup", "1", "--json-out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| smoke |" in run.stdout  # the table
    report = json.loads(out.read_text())
    assert report["meta"]["matmul_peak_gflops"] > 0 and report["meta"]["backend"]
    (result,) = report["ours"]["smoke"]
    assert len(result["step_s"]) == 2 and min(result["step_s"]) > 0
    assert result["first_step_s"] > 0 and result["translate_s_median"] > 0
    assert result["traces_at_end"] == result["traces_after_warmup"]  # no retrace while timing
    assert 0 < result["import_rss_mib"] < result["peak_rss_mib"]
    (row,) = report["rows"]
    assert row["gflop_per_step"] > row["translate_gflop"] > 0


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


def test_bench_full_resolution_reports_seconds_and_memory(tmp_path):
    out = tmp_path / "full_resolution.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_full_resolution.py"), "--sizes", "48",
                          "--models", "demo", "--repeats", "1", "--json-out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| demo | 48 x 48 |" in run.stdout and "load average before" in run.stdout
    (row,) = json.loads(out.read_text())["rows"]
    assert row["seconds"] > 0 and row["peak_rss_mib"] > row["image_mib"] >= 0
