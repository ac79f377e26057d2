"""Layout of a run folder (the book's convention, one folder per run) and small helpers to read it.

    run/cyclegan/0001_synthetic_apple2orange/
        config.json               every model and training setting, the dataset, versions
        index.html                the results page (utils/report.py), newest first
        images/grid_0000500.png   reconstruction grids, named by step (utils/plots.py)
        images/grid_inputs.npz    the fixed test images of the grids, chosen at the start
        images/losses.png         loss curves
        images/progress.gif       the grids over training
        weights/ckpt-00001000/    checkpoints (models/checkpoint.py); weights/latest names the newest
        logs/losses.csv           every loss of every step (utils/run_logs.py)
        logs/events.out.tfevents.*  TensorBoard: losses, learning rate, grids
"""

import json
import re
from pathlib import Path

from models.disk_space import remove_quietly
from models.files import write_json  # noqa: F401  (only for utils/training.py's `layout.write_json`; to be dropped)

CONFIG = "config.json"
INDEX = "index.html"
IMAGES = "images"
WEIGHTS = "weights"
LOGS = "logs"
LOSSES_CSV = "logs/losses.csv"
LOSS_PLOT = "images/losses.png"
ANIMATION = "images/progress.gif"
GRID_INPUTS = "images/grid_inputs.npz"

# Defaults of the training settings stored in config.json's "training" section (utils.training.train).
TRAINING_DEFAULTS = {
    "batch_size": 1,              # the book's and the paper's
    "sample_interval": 500,       # steps between grids (and loss plot, GIF, page)
    "checkpoint_interval": 1000,  # steps between checkpoints: the most a crash can lose
    "max_steps": None,            # None: all config.epochs + config.decay_epochs epochs
    "n_grid_images": 2,           # test images per domain in each grid
    "preprocess": "resize_and_crop",  # how a photo becomes a crop (utils/data_loader.PREPROCESS)
}


def folder_name(dataset):
    """A dataset name as one safe folder name: 'sub/ds2' -> 'sub_ds2' (no separators, no '..')."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(dataset)).strip("._") or "dataset"


def new_run_folder(run_root, dataset):
    """Create and return the next free `<run_root>/<NNNN>_<dataset>/` (0001, 0002, ...)."""
    run_root = Path(run_root)
    run_root.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in run_root.iterdir() if (m := re.match(r"(\d+)_", p.name))]
        folder = run_root / f"{max(numbers, default=0) + 1:04d}_{folder_name(dataset)}"
        try:
            folder.mkdir()  # fails if another process took this number first: then count again
            return folder
        except FileExistsError:
            continue


def grid_path(run_folder, step):
    return Path(run_folder) / IMAGES / f"grid_{step:07d}.png"


def grid_paths(run_folder):
    """All reconstruction grids of a run, oldest first."""
    return sorted((Path(run_folder) / IMAGES).glob("grid_*.png"))


def latest_grid(run_folder):
    """The newest reconstruction grid of a run (None before the first)."""
    paths = grid_paths(run_folder)
    return paths[-1] if paths else None


def read_run_config(run_folder):
    """A run's config.json as a dict; a clear error if the folder is not a run folder."""
    path = Path(run_folder) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{run_folder} is not a run folder: it has no {CONFIG} "
                                "(run folders are made by utils.training.train / python train.py)")
    return json.loads(path.read_text())


def remove_temporary_files(run_folder):
    """Delete what interrupted atomic writes left in a run folder (`.name.tmp*`, `*.tmp.npz`,
    `weights/.tmp-ckpt-*`). Only the run's owner (utils/run_lock.py) calls this, so none is in use."""
    run_folder = Path(run_folder)
    for folder in (run_folder, run_folder / IMAGES, run_folder / LOGS, run_folder / WEIGHTS):
        for pattern in (".*.tmp*", "*.tmp.npz", ".tmp-*"):
            for leftover in folder.glob(pattern):
                remove_quietly(leftover)
