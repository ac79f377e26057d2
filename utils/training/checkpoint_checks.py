"""What makes a checkpoint (or a model folder's weight file) trustworthy: the checks `verify` runs.

A checkpoint folder is used only if it is what its state.json says (utils/training/checkpoint.py has the
layout): a real folder, not a symbolic link; named after the step it holds; of the run whose
config.json it sits under (the fields in RUN_FIELDS); with every key of STATE_KEYS, the manifest
among them; each file matching its size and SHA-256; and every number finite, with no network
weight above MAX_WEIGHT. Each problem is one line naming the file and why, so that a caller can
fall back to an older checkpoint and say which one it skipped.

No file is trusted to say how big it is: a 1.6 MB weight file can hold a compressed (or unwritten,
sparse) dataset of 5e9 zeros that its manifest happily matches. Before any value is read, each array's
declared size must be stored in the file byte for byte (`_size_problem`), and where the architecture
is known (`expected_layout` of the built network) every dataset must be one it has, of its shape and
type, and none more (`layout_problem`); the values are then read a bounded block at a time.
"""

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np

from models.config import CycleGANConfig
from models.directions import DOMAINS

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
BLOCK = 1 << 20   # values read at a time when checking a file's numbers (4 MB of float32)
NUMBER_KINDS = "fiub"   # a weight file holds floats, and integers for an optimizer's step count


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


def load_json(path, limit=1 << 20):
    """The JSON in the file `path`, read up to `limit` bytes; ValueError (one line) if it is larger, not
    JSON or nested too deeply for Python (200,000 brackets are a RecursionError, not a config)."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit:,} bytes, far more than this project writes there")
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply to be a config") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason})") from None


def config_problem(values):
    """What makes `values` (a config.json's "model" or a state.json's "config") not a CycleGANConfig, in one
    line, or None. Checked before the config is built: an integer input_dim is a TypeError there, and
    [64.9, 64.2, 3.7] would be cut to (64, 64, 3) without a word."""
    if not isinstance(values, dict):
        return f"the model settings are {type(values).__name__} {_short(values)}, not an object of settings"
    dims = values.get("input_dim", (128, 128, 3))
    if not isinstance(dims, (list, tuple)) or len(dims) != 3 or \
            any(isinstance(v, bool) or not isinstance(v, int) for v in dims):
        return f"input_dim {_short(dims)}: must be 3 integers (height, width, channels), e.g. [128, 128, 3]"
    try:
        CycleGANConfig.from_dict(values)
    except (TypeError, ValueError, AttributeError, RecursionError) as error:
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def _short(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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
        state = load_json(state_file)
    except (OSError, ValueError) as error:
        return [f"{state_file} is unreadable ({error})"]
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return [f"{state_file} is not a {FORMAT} checkpoint"]
    missing = [key for key in STATE_KEYS if key not in state]
    if not missing and not (isinstance(state["pool_rng"], dict) and set(DOMAINS) <= set(state["pool_rng"])):
        missing = ["pool_rng/A and pool_rng/B"]
    if missing:   # "files": written before manifests, or edited; either way nothing can be checked
        return [f"damaged: {state_file} lacks {missing[0]}"]
    wrong = [key for key in ("epoch", "batch", "step")
             if isinstance(state[key], bool) or not isinstance(state[key], int)]
    if not isinstance(state["files"], dict) or not all(isinstance(v, dict) for v in state["files"].values()):
        wrong.append("files")
    if wrong:
        return [f"damaged: {state_file} holds {wrong[0]} {_short(state[wrong[0]])}, not what a checkpoint writes"]
    if state["checksum"] != state_checksum(state):
        return [f"{state_file} was changed after it was written (checksum mismatch)"]
    problem = config_problem(state["config"])
    if problem:
        return [f"{state_file} holds an invalid config ({problem})"]
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


def values_problems(file, expected=None):
    """Non-finite numbers in a weight file (.h5) or an array file (.npz), or a network weight above
    MAX_WEIGHT: [] when sane, else one problem naming the file and the array.

    Nothing is read before each array's size is checked against the bytes the file stores for it (and,
    for a .h5 with `expected` = `expected_layout(network)`, against the architecture); values are then
    read BLOCK at a time, so a bomb costs neither the memory nor the time of its declared size.
    """
    file = Path(file)
    try:
        if file.suffix == ".npz":
            return _npz_problems(file)
        return _h5_problems(file, expected)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        return [f"{file} is unreadable ({type(error).__name__}: {error})"]


def _block_problem(file, key, block, is_weight):
    """The problem of one block of an array's values, or None."""
    if block.dtype.kind != "f":
        return None
    if not np.all(np.isfinite(block)):
        return f"{file} holds NaN or inf in {key}"
    if is_weight and block.size and np.abs(block).max() > MAX_WEIGHT:
        return (f"{file} holds a weight of {np.abs(block).max():.3g} in {key}, above {MAX_WEIGHT:g}: saved by a "
                "diverging run")
    return None


def _size_problem(file, key, shape, dtype, stored):
    """A problem if the array `key` declares more bytes than the file stores for it (compressed or sparse:
    a bomb), or holds no numbers; else None."""
    if shape is None or (dtype.kind not in NUMBER_KINDS and not (file.suffix == ".npz" and dtype.kind == "U")):
        return f"{file} holds {key} of type {dtype}, not numbers: not a file this project wrote"
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > stored:
        return (f"{file} declares {key} of shape {tuple(shape)} ({declared:,} bytes) but stores {stored:,} bytes "
                "for it (compressed or sparse): refused before reading it, as this project never writes that")
    return None


def storage_problem(file):
    """A problem if a dataset of the .h5 file `file` declares more bytes than the file stores for it (a
    bomb: compressed or sparse) or holds no numbers; None otherwise. No value is read."""
    with h5py.File(file, "r") as weights:
        return _storage_problem(file, weights, _datasets(weights))


def _datasets(weights):
    names = []
    weights.visititems(lambda key, item: names.append(key) if isinstance(item, h5py.Dataset) else None)
    return names


def _storage_problem(file, weights, datasets):
    for key in datasets:
        dataset = weights[key]
        problem = _size_problem(file, key, dataset.shape, dataset.dtype, dataset.id.get_storage_size())
        if problem:
            return problem
    return None


def _h5_problems(file, expected):
    with h5py.File(file, "r") as weights:
        datasets = _datasets(weights)
        problem = _storage_problem(file, weights, datasets)
        if problem is None and expected is not None:
            problem = layout_problem(file, {key: (weights[key].shape, weights[key].dtype) for key in datasets},
                                     expected)
        if problem:
            return [problem]
        is_weight = lambda key: file.suffix == ".h5" and "optimizer" not in key  # noqa: E731
        for key in datasets:
            dataset = weights[key]
            if dataset.ndim == 0:
                blocks = [np.asarray(dataset[()])]
            else:
                row = max(1, int(np.prod(dataset.shape[1:], dtype=object)))
                step = max(1, BLOCK // row)
                blocks = (dataset[i:i + step] for i in range(0, dataset.shape[0], step))
            for block in blocks:
                problem = _block_problem(file, key, np.asarray(block), is_weight(key))
                if problem:
                    return [problem]
    return []


def _npz_problems(file):
    """An .npz as np.savez writes it: stored (not deflated) .npy members, each read BLOCK values at a time."""
    with zipfile.ZipFile(file) as archive:
        for info in archive.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                return [f"{file} holds {key} compressed: refused before reading it, as this project never writes "
                        "that (np.savez stores arrays as they are)"]
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                               np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
                stored = info.file_size - member.tell()
                problem = _size_problem(file, key, shape, dtype, stored)
                if problem:
                    return [problem]
                left = int(np.prod(shape, dtype=object))
                while left:
                    count = min(left, BLOCK)
                    data = member.read(count * dtype.itemsize)
                    if len(data) != count * dtype.itemsize:
                        raise EOFError(f"{key} ends early")
                    problem = _block_problem(file, key, np.frombuffer(data, dtype=dtype), False)
                    if problem:
                        return [problem]
                    left -= count
    return []


def expected_layout(model):
    """{dataset name: (shape, dtype)} of the weight file that `model.save_weights` writes: what a weight
    file of this architecture holds, and all it may hold."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "expected.weights.h5"
        model.save_weights(path)
        return file_layout(path)


def file_layout(file):
    """{dataset name: (shape, dtype)} of a .h5 file, no value read."""
    with h5py.File(file, "r") as weights:
        layout = {}
        weights.visititems(lambda key, item: layout.__setitem__(key, (item.shape, item.dtype))
                           if isinstance(item, h5py.Dataset) else None)
    return layout


def layout_difference(found, expected):
    """(dataset name, what the file has, what the architecture has) of the first difference, or None.
    A float array of another width (a float16 model folder) fits a float32 variable."""
    extra = sorted(set(found) - set(expected))
    if extra:
        return extra[0], found[extra[0]], None
    for key, (shape, dtype) in expected.items():
        if key not in found:
            return key, None, (shape, dtype)
        file_shape, file_dtype = found[key]
        same_type = file_dtype == dtype or (file_dtype.kind == dtype.kind == "f" and file_dtype.itemsize in (2, 4, 8))
        if tuple(file_shape) != tuple(shape) or not same_type:
            return key, (file_shape, file_dtype), (shape, dtype)
    return None


def layout_problem(file, found, expected):
    """One line naming the first dataset of `file` that its architecture does not have as it is, or None."""
    difference = layout_difference(found, expected)
    if difference is None:
        return None
    key, have, want = difference
    if want is None:
        return (f"{file} holds {key} {tuple(have[0])} {have[1]}, which this architecture has no place for: not a "
                "weight file of this model")
    if have is None:
        return f"{file} lacks {key}, which this architecture has: not a weight file of this model"
    return (f"{file} holds {key} as {tuple(have[0])} {have[1]}, this architecture has {tuple(want[0])} {want[1]}: "
            "saved from a different architecture")


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
