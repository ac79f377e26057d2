"""The training loop's run folder: contents, resume without duplicate rows, Ctrl-C and SIGKILL survival."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import CycleGAN
from utils.training import run_folder as layout
from utils.training.logs import COLUMNS, read_losses
from utils.training.run_folder import new_run_folder
from utils.training.trainer import load_run, train

REPO = Path(__file__).resolve().parents[1]
DATASET = "synthetic_apple2orange"
TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=4, epochs=1,
            decay_epochs=1, seed=0)


@pytest.fixture(scope="module")
def first_run(data_root, tmp_path_factory):
    """8 steps: grids at 0, 3, 6 and 8 (the end), checkpoints at 0, 4 and 8."""
    run_root = tmp_path_factory.mktemp("run")
    run = train(TINY, DATASET, data_root=data_root, run_root=run_root, sample_interval=3, checkpoint_interval=4,
                max_steps=8, progress=False)
    return run


def csv_steps(run):
    return read_losses(run / layout.LOSSES_CSV)["step"].astype(int).tolist()


@pytest.mark.long
def test_run_folder_holds_every_part(first_run):
    run = first_run
    assert re.fullmatch(r"0001_synthetic_apple2orange", run.name)
    meta = json.loads((run / "config.json").read_text())
    assert meta["dataset"] == DATASET
    assert meta["model"]["gen_n_filters"] == 4 and meta["model"]["lambda_reconstr"] == 10
    assert meta["training"]["checkpoint_interval"] == 4 and meta["training"]["max_steps"] == 8
    assert {"backend", "backend_version", "keras", "numpy", "python"} <= set(meta["environment"])

    grids = [p.name for p in layout.grid_paths(run)]
    assert grids == ["grid_0000000.png", "grid_0000003.png", "grid_0000006.png", "grid_0000008.png"]
    sizes = {Image.open(p).size for p in layout.grid_paths(run)}
    assert len(sizes) == 1                        # same pixel size every time: the GIF animates cleanly
    assert Image.open(run / layout.LOSS_PLOT).size[0] > 500
    with Image.open(run / layout.ANIMATION) as gif:
        assert gif.n_frames == 4

    losses = read_losses(run / layout.LOSSES_CSV)
    assert list(losses) == list(COLUMNS)
    assert losses["step"].tolist() == list(range(1, 9))
    assert np.all(np.isfinite(losses["g_loss"])) and np.all(losses["learning_rate"] > 0)

    assert load_run(run).step == 8
    assert sorted(p.name for p in (run / "weights").glob("ckpt-*")) == [
        "ckpt-00000000", "ckpt-00000004", "ckpt-00000008"]


def test_tensorboard_events_hold_losses_learning_rate_and_grids(first_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(first_run / "logs"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"loss/d_A", "loss/g_loss", "loss/reconstr_B", "loss/id_A", "learning_rate"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss/d_A")] == list(range(1, 9))
    assert [e.step for e in events.Images("reconstruction_grid")] == [0, 3, 6, 8]


def test_index_html_links_only_files_that_exist(first_run):
    page = (first_run / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"?]+)', page)
    assert "images/grid_0000008.png" in links and "images/losses.png" in links and "images/progress.gif" in links
    for link in links:
        assert not link.startswith(("http", "/")), link           # offline: relative links only
        assert (first_run / link).exists(), link
    # newest grid first in the list of all grids
    grid_links = [link for link in links if "grid_" in link]
    assert grid_links[1:] == sorted(set(grid_links), reverse=True)
    assert "finished: 8 steps" in page
    assert re.search(r'class="changed"><td>model</td><td>input_dim</td><td>32 x 32 x 3', page)


@pytest.mark.long
def test_resume_drops_rows_past_the_checkpoint_and_continues(first_run, data_root, tmp_path):
    run = tmp_path / first_run.name
    shutil.copytree(first_run, run)
    before = read_losses(run / layout.LOSSES_CSV)
    # As if the run had died after step 8 but before saving ckpt-8: rows 5..8 must be trained again.
    shutil.rmtree(run / "weights" / "ckpt-00000008")
    (run / "weights" / "latest").write_text("ckpt-00000004")
    with open(run / layout.LOSSES_CSV, "a") as f:
        f.write("9,0,8,0.0002,17")   # and a torn last line

    train(None, None, run, data_root=data_root, resume=True, max_steps=10, progress=False)

    after = read_losses(run / layout.LOSSES_CSV)
    assert after["step"].tolist() == list(range(1, 11))          # no step twice, none missing
    np.testing.assert_array_equal(after["g_loss"][:4], before["g_loss"][:4])
    # the same data stream, pool and optimizer state: steps 5..8 come out as before
    np.testing.assert_allclose(after["g_loss"][4:8], before["g_loss"][4:8], rtol=1e-3)
    assert load_run(run).step == 10
    meta = json.loads((run / "config.json").read_text())
    assert [s["start_step"] for s in meta["sessions"]] == [0, 4]
    assert after["elapsed_s"][-1] > after["elapsed_s"][3]


@pytest.mark.long
def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(data_root, tmp_path, capsys):
    before = signal.getsignal(signal.SIGINT)   # Python's default; SIG_IGN in a job started in the background

    def press_ctrl_c(gan, row):
        if row["step"] == 3:
            os.kill(os.getpid(), signal.SIGINT)   # caught by the loop: it finishes this step first

    with pytest.raises(KeyboardInterrupt):
        train(TINY, DATASET, data_root=data_root, run_root=tmp_path, max_steps=50, progress=False,
              callbacks=[press_ctrl_c])
    run = tmp_path / f"0001_{DATASET}"
    assert load_run(run).step == 3
    assert csv_steps(run) == [1, 2, 3]
    assert "python train.py --resume" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before   # the caller's handler restored


@pytest.mark.long
def test_sigkill_at_a_random_moment_loses_at_most_one_checkpoint_interval(data_root, tmp_path):
    interval = 5
    command = [sys.executable, str(REPO / "train.py"), "--dataset", DATASET, "--data-root", str(data_root),
               "--run-root", str(tmp_path), "--img-size", "32", "--gen-filters", "4", "--disc-filters", "4",
               "--epochs", "3", "--decay-epochs", "3", "--sample-interval", "4", "--checkpoint-interval",
               str(interval), "--max-steps", "30", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = tmp_path / f"0001_{DATASET}"
    kill_after = random.Random().randint(2, 20)   # rows logged before the kill: any moment of the run
    deadline = time.time() + 600   # a loaded 2-core machine can take minutes to start JAX and trace
    try:
        while time.time() < deadline and process.poll() is None:
            if (run / layout.LOSSES_CSV).exists() and len(csv_steps(run)) >= kill_after:
                break
            time.sleep(0.05)
        time.sleep(random.Random().uniform(0, 0.3))
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert (run / layout.LOSSES_CSV).exists(), "train.py logged no step within the deadline"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)

    logged = max(csv_steps(run))
    saved = load_run(run).step
    assert logged - saved <= interval, (logged, saved)
    train(None, None, run, data_root=data_root, resume=True, progress=False)   # max_steps 30 from config.json
    assert csv_steps(run) == list(range(1, 31))
    assert load_run(run).step == 30
    for png in layout.grid_paths(run) + [run / layout.LOSS_PLOT]:
        Image.open(png).load()                      # no half-written picture
    assert "finished: 30 steps" in (run / "index.html").read_text()
    assert not list(run.rglob(".*tmp*"))           # no temporary file left behind


def test_a_missing_real_dataset_says_how_to_get_it(tmp_path):
    from utils.datasets.loader import DatasetError
    with pytest.raises(DatasetError, match="python -m utils.datasets.download apple2orange"):
        train(TINY, "apple2orange", data_root=tmp_path / "data", run_root=tmp_path / "run")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())   # no empty run folder


def test_new_run_folders_count_up_and_an_existing_run_is_not_overwritten(data_root, tmp_path):
    assert new_run_folder(tmp_path, "a").name == "0001_a"
    assert new_run_folder(tmp_path, "b").name == "0002_b"
    (tmp_path / "0041_c").mkdir()
    assert new_run_folder(tmp_path, "a").name == "0042_a"
    run = tmp_path / "0002_b"
    (run / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="already holds a run.*--resume"):
        train(TINY, DATASET, run, data_root=data_root)


def test_a_trained_model_cannot_start_a_new_run_by_accident(data_root, tmp_path):
    gan = CycleGAN(**TINY)
    gan.step = 5
    with pytest.raises(ValueError, match="mode='load'"):
        train(gan, DATASET, data_root=data_root, run_root=tmp_path)
    with pytest.raises(ValueError, match="mode"):
        train(TINY, DATASET, mode="continue")


def test_train_py_speed_flags_set_the_config():
    sys.path.insert(0, str(REPO))
    import train as cli
    _, args = cli.parse_args(["--dataset", DATASET, "--data-parallel", "--mixed-precision", "--jit", "off"])
    config = cli.model_config(args)
    assert config.data_parallel is True and config.mixed_precision is True and config.jit_compile is False
    default = cli.model_config(cli.parse_args(["--dataset", DATASET])[1])
    assert default.data_parallel is False and default.mixed_precision is False and default.jit_compile == "auto"
    assert cli.model_config(cli.parse_args(["--dataset", DATASET, "--jit", "on"])[1]).jit_compile is True


def test_train_py_issue_26_flags_set_the_config():
    """--unet-upsampling, --diff-augment (alone: the paper's policy), --disc-n-layers; the paper's by default."""
    sys.path.insert(0, str(REPO))
    import train as cli

    def config(*flags):
        return cli.model_config(cli.parse_args(["--dataset", DATASET, *flags])[1])

    assert (config().unet_upsampling, config().diff_augment) == ("nearest", "")
    assert config("--unet-upsampling", "bilinear").unet_upsampling == "bilinear"
    assert config("--diff-augment").diff_augment == "color,translation,cutout"
    assert config("--diff-augment", "translation,cutout").diff_augment == "translation,cutout"
    assert config().disc_n_layers == 3 and config("--disc-n-layers", "2").disc_n_layers == 2
    with pytest.raises(SystemExit):
        config("--unet-upsampling", "cubic")


def test_the_first_step_says_it_prepares_the_graph_and_a_resume_says_how_long_it_took(first_run, data_root,
                                                                                       tmp_path, capsys):
    """Issue #36: the first step's pause is announced, measured into config.json, and quoted on --resume."""
    meta = json.loads((first_run / "config.json").read_text())
    first_step_s = meta["sessions"][0]["first_step_s"]
    assert isinstance(first_step_s, float) and first_step_s > 0
    run = tmp_path / first_run.name
    shutil.copytree(first_run, run)
    capsys.readouterr()
    train(None, None, run, data_root=data_root, resume=True, max_steps=9, progress=False)
    printed = capsys.readouterr().out
    assert (f"Preparing the training graph: the first step traces and optimises it once, about "
            f"{first_step_s:.0f} s here (this run, last time)") in printed
    sessions = json.loads((run / "config.json").read_text())["sessions"]
    assert len(sessions) == 2 and sessions[1]["first_step_s"] > 0


def test_max_steps_with_fit_schedule_ends_with_the_decay_and_without_keeps_the_papers(data_root, tmp_path, capsys):
    """Issue #36: `train.py --max-steps N` keeps the paper's schedule (a constant rate); --fit-schedule shrinks
    it to N as the notebooks' "auto" does. 6 images a domain: 6 steps an epoch, 20 steps fit 3 epochs."""
    config = {**TINY, "epochs": 100, "decay_epochs": 100}
    run = train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=20, progress=False,
                fit_schedule=True, sample_interval=100, checkpoint_interval=100)
    assert "Schedule fitted to the budget: 18 steps (2 epochs at the full learning rate, then 1 decaying to 0" \
        in capsys.readouterr().out
    meta = json.loads((run / "config.json").read_text())
    assert (meta["model"]["epochs"], meta["model"]["decay_epochs"], meta["training"]["max_steps"]) == (2, 1, 18)
    rates = read_losses(run / layout.LOSSES_CSV)["learning_rate"]
    assert len(rates) == 18 and rates[0] == pytest.approx(2e-4) and rates[-1] < 2e-4 / 6 + 1e-12
    kept = train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=8, progress=False,
                 sample_interval=100, checkpoint_interval=100)
    np.testing.assert_allclose(read_losses(kept / layout.LOSSES_CSV)["learning_rate"], 2e-4)   # 8 steps, constant
    with pytest.raises(ValueError, match="at least one epoch, 6 steps here"):
        train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=5, fit_schedule=True)
