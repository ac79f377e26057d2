"""What makes a checkpoint (or a model folder's weight file) trustworthy: the checks `verify` runs.

A checkpoint folder is used only if it is what its state.json says (models/checkpoint.py has the
layout): a real folder, not a symbolic link; named after the step it holds; of the run whose
config.json it sits under (the fields in RUN_FIELDS); with every key of STATE_KEYS, the manifest
among them; each file matching its size and SHA-256; and every number finite, with no network
weight above MAX_WEIGHT. Each problem is one line naming the file and why, so that a caller can
fall back to an older checkpoint and say which one it skipped.
"""

import hashlib
import json
import os
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np

from models.config import CycleGANConfig

FORMAT = "cyclegan-checkpoint/1"
NETWORKS = ("g_AB", "g_BA", "d_A", "d_B")
FILES = (*(f"{net}.weights.h5" for net in NETWORKS), "optimizers.npz", "pools.npz")
STATE_KEYS = ("format", "config", "epoch", "batch", "step", "learning_rate", "pool_rng", "files", "checksum")
# Fields that make a run what it is: a checkpoint differing from its run's config.json in one of them
# belongs to another run. The learning rate may change on resume (train.py --resume --learning-rate).
RUN_FIELDS = ("input_dim", "generator_type", "gen_n_filters", "disc_n_filters", "n_resnet_blocks", "seed",
              "lambda_validation", "lambda_reconstr", "lambda_id", "buffer_max_length", "epochs", "decay_epochs",
              "unet_upsampling", "resnet_upsampling", "diff_augment", "disc_n_layers")
# A network weight above this is divergence, not learning: the shipped models' largest is 0.24, and a
# run with --learning-rate 1e30 passes it in its first step. Such a checkpoint is not saved or used.
MAX_WEIGHT = 1e4


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: damaged, incomplete or holding non-finite weights."""


def sha256_of(path):
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def state_checksum(state):
    """The SHA-256 of a state.json's contents without its own "checksum" key."""
    body = {k: v for k, v in state.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def verify(path, run_config=None):
    """Problems of the checkpoint folder `path` ([] when intact), each naming the file and why.

    Intact means: a real folder (not a link) named after the step its state.json holds, every key and
    the manifest present, each file matching its size and SHA-256, every number finite, and every
    network weight within MAX_WEIGHT. run_config: the run's config.json "model" dict; the checkpoint's
    config must agree with it on RUN_FIELDS (a checkpoint of another run is refused).
    """
    path = Path(path)
    state_file = path / "state.json"
    if path.is_symlink():
        return [f"{path} is a symbolic link (to {os.readlink(path)}): a checkpoint must be a folder of its own "
                "run; copy the folder if you mean to use it"]
    if not state_file.is_file():
        return [f"{state_file} is missing (the save did not finish)"]
    try:
        state = json.loads(state_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return [f"{state_file} is unreadable ({error})"]
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return [f"{state_file} is not a {FORMAT} checkpoint"]
    missing = [key for key in STATE_KEYS if key not in state]
    if not missing and not (isinstance(state["pool_rng"], dict) and {"A", "B"} <= set(state["pool_rng"])):
        missing = ["pool_rng/A and pool_rng/B"]
    if missing:   # "files": written before manifests, or edited; either way nothing can be checked
        return [f"damaged: {state_file} lacks {missing[0]}"]
    if state["checksum"] != state_checksum(state):
        return [f"{state_file} was changed after it was written (checksum mismatch)"]
    problems = _identity_problems(path, state, run_config)
    manifest = state["files"]
    for name in FILES:
        file = path / name
        if file.is_symlink() or not file.is_file():
            problems.append(f"{file} is missing" if not file.is_symlink() else f"{file} is a symbolic link")
        elif name not in manifest:
            problems.append(f"{file} is not in the manifest of {state_file}")
        elif file.stat().st_size != manifest[name]["bytes"]:
            problems.append(f"{file} has {file.stat().st_size} bytes, {manifest[name]['bytes']} were written "
                            "(truncated or replaced)")
        elif sha256_of(file) != manifest[name]["sha256"]:
            problems.append(f"{file} does not match its SHA-256 in state.json (damaged)")
        else:
            problems += values_problems(file)
    return problems


def _identity_problems(path, state, run_config):
    """The checkpoint is the step its folder names, of the run whose config.json is `run_config`."""
    problems = []
    if path.name.startswith("ckpt-") and path.name[5:] != f"{state['step']:08d}":
        problems.append(f"{path / 'state.json'} holds step {state['step']}, not the step of its folder name "
                        f"{path.name} (renamed or copied from elsewhere)")
    if run_config is not None:
        try:
            ours, theirs = CycleGANConfig.from_dict(run_config), CycleGANConfig.from_dict(state["config"])
        except (TypeError, ValueError) as error:
            return problems + [f"{path / 'state.json'} holds an invalid config ({error})"]
        differ = [f"{name} {getattr(theirs, name)!r} (the run's config.json: {getattr(ours, name)!r})"
                  for name in RUN_FIELDS if getattr(ours, name) != getattr(theirs, name)]
        if differ:
            problems.append(f"{path} was saved by another run: {', '.join(differ)}")
    return problems


def values_problems(file):
    """Non-finite numbers in a weight file (.h5) or an array file (.npz), or a network weight above
    MAX_WEIGHT: [] when sane, else one problem naming the file and the array."""
    file = Path(file)
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as arrays:
                named = [(key, arrays[key]) for key in arrays.files]
        else:
            named = []
            with h5py.File(file, "r") as weights:
                weights.visititems(lambda key, item: named.append((key, item[()]))
                                   if isinstance(item, h5py.Dataset) else None)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        return [f"{file} is unreadable ({type(error).__name__}: {error})"]
    for key, value in named:
        value = np.asarray(value)
        if value.dtype.kind != "f":
            continue
        if not np.all(np.isfinite(value)):
            return [f"{file} holds NaN or inf in {key}"]
        is_weight = file.suffix == ".h5" and "optimizer" not in key
        if is_weight and value.size and np.abs(value).max() > MAX_WEIGHT:
            return [f"{file} holds a weight of {np.abs(value).max():.3g} in {key}, above {MAX_WEIGHT:g}: "
                    "saved by a diverging run"]
    return []


def weight_problem(model):
    """What is wrong with the weights of `model`: the first that holds NaN or inf, or is above
    MAX_WEIGHT in size ("weight <path> is NaN or inf"), or None if all are sane."""
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        if not np.all(np.isfinite(value)):
            return f"weight {variable.path} is NaN or inf"
        if value.size and np.abs(value).max() > MAX_WEIGHT:
            return f"weight {variable.path} reaches {np.abs(value).max():.3g}, above {MAX_WEIGHT:g}"
    return None
