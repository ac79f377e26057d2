"""Layout of a run folder (the book's convention, one folder per run) and small helpers to read it.

    run/cyclegan/0001_synthetic_apple2orange/
        config.json               every model and training setting, the dataset, versions
        index.html                the results page (utils/training/page.py), newest first
        evaluation.json           evaluate.py's scores, with images/evaluation*.png, when it was evaluated
        images/grid_0000500.png   reconstruction grids, named by step (utils/plots.py)
        images/grid_inputs.npz    the fixed test images of the grids, chosen at the start
        images/losses.png         loss curves
        images/progress.gif       the grids over training
        weights/ckpt-00001000/    checkpoints (utils/training/checkpoint.py), each with its state.json;
                                  weights/latest names the newest
        logs/losses.csv           every loss of every step (utils/training/logs.py)
        logs/events.out.tfevents.*  TensorBoard: losses, learning rate, grids
        translated/AtoB_testA/    translate.py's output, by default (utils/inference/translation.py)
        export/g_AB.tflite        export.py's output, by default (utils/inference/export.py)

The names below are the one home of that layout: every reader and writer of a run folder uses them. A model
folder (pretrained/..., utils/inference/trained_model.py) keeps the same config.json name; `run_folder_of`
finds the folder of any model path (a run, its weights/, one of its checkpoints, a model folder).
"""

import datetime
import importlib
import json
import os
import platform
import re
from pathlib import Path

from utils.runtime.disk_space import remove_quietly

CONFIG = "config.json"
INDEX = "index.html"
IMAGES = "images"
WEIGHTS = "weights"
LOGS = "logs"
LOSSES_CSV = "logs/losses.csv"
LOSS_PLOT = "images/losses.png"
ANIMATION = "images/progress.gif"
GRID_INPUTS = "images/grid_inputs.npz"
EVALUATION_JSON = "evaluation.json"                  # written by evaluate.py (utils/evaluation/unpaired.py)
EVALUATION_FIGURE = "images/evaluation.png"
FAILURES_FIGURE = "images/evaluation_failures.png"
CHECKPOINT_STATE = "state.json"                      # in each weights/ckpt-*/: what marks a checkpoint folder
TRANSLATED = "translated"
EXPORT = "export"


def is_checkpoint(path):
    """Whether `path` is one checkpoint folder (a ckpt-* with its state.json), not a run or a model folder."""
    return (Path(path) / CHECKPOINT_STATE).is_file()


def run_folder_of(path):
    """The folder a model path belongs to, where its translations, exports and config.json are: a checkpoint
    folder -> its run folder (the one above weights/; a checkpoint outside a run: its parent), a run's weights/
    -> the run, anything else (a run folder, a model folder, even one named weights) -> itself."""
    path = Path(path)
    if is_checkpoint(path):
        return path.parent.parent if path.parent.name == WEIGHTS else path.parent
    return path.parent if path.name == WEIGHTS and not (path / CONFIG).is_file() else path


def evaluation_file(run_folder, name, image_size=None):
    """Where evaluate.py writes `name` (EVALUATION_JSON, EVALUATION_FIGURE or FAILURES_FIGURE) in a run or
    model folder; with image_size (scored at another size than the model's) its own file beside it:
    evaluation_256px.json, images/evaluation_256px.png, images/evaluation_failures_256px.png."""
    path = Path(run_folder) / name
    return path if image_size is None else path.with_name(f"{path.stem}_{int(image_size)}px{path.suffix}")


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
                                "(run folders are made by utils.training.trainer.train / python train.py)")
    return json.loads(path.read_text())


def refuse_links(folder):
    """UserError naming the first symbolic link inside `folder` (at any depth), or None.

    Everything a run writes must stay inside its own folder: a weights/ or logs/ (or any file) that links
    to another run's would have a resume save into that run, prune its checkpoints, move its `latest` and
    cut its losses.csv. The folder itself may be a link (or sit under one); what is inside it may not.
    """
    from utils.cli import UserError   # here: utils.cli is not needed to read a run folder
    for parent, subfolders, files in os.walk(folder):   # os.walk does not descend into a linked folder
        for name in sorted(subfolders + files):
            path = Path(parent) / name
            if path.is_symlink():
                raise UserError(f"{path} is a symbolic link (to {os.readlink(path)}): everything a run writes must "
                                f"be inside its own folder {folder}, or it would write into what the link points "
                                f"to. Replace the link with a copy of what it points to and try again")


def remove_temporary_files(run_folder):
    """Delete what interrupted atomic writes left in a run folder (`.name.tmp*`, `*.tmp.npz`,
    `weights/.tmp-ckpt-*`). Only the run's owner (utils/training/lock.py) calls this, so none is in use;
    a linked sub-folder is skipped (what it points to is not this run's)."""
    run_folder = Path(run_folder)
    for folder in (run_folder, run_folder / IMAGES, run_folder / LOGS, run_folder / WEIGHTS):
        if folder != run_folder and folder.is_symlink():
            continue
        for pattern in (".*.tmp*", "*.tmp.npz", ".tmp-*"):
            for leftover in folder.glob(pattern):
                remove_quietly(leftover)


def environment():
    """Backend, library and Python versions, for config.json."""
    import keras   # here, not at the top: reading a run folder needs no Keras
    import numpy as np

    backend = keras.backend.backend()
    try:
        backend_version = importlib.import_module({"torch": "torch"}.get(backend, backend)).__version__
    except (ImportError, AttributeError):
        backend_version = None
    return {"backend": backend, "backend_version": backend_version, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "platform": platform.platform()}


def now():
    """This moment in local time with its offset, for config.json: '2026-12-02T03:04:05+00:00'."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")
