"""Atomic, verified, pickle-free checkpoints of a `CycleGAN`: everything a run needs to go on.

Layout of one checkpoint, `<directory>/ckpt-<step>/`:

    g_AB.weights.h5, g_BA.weights.h5, d_A.weights.h5, d_B.weights.h5   Keras weight files
    optimizers.npz   Adam states of d_A, d_B and the combined model (iterations, learning rate,
                     moments), keyed '<optimizer>/<index>' with the variable paths beside them
    pools.npz        the two histories of generated images
    state.json       format version, config, epoch / batch / step, pool RNG states, versions, and
                     the manifest: each other file's size and SHA-256, and a checksum of itself

It is written into a temporary folder, state.json last, verified against its manifest, and renamed
into place only then; the text file `<directory>/latest` is replaced (also atomically) to name it,
and only after that are checkpoints beyond the newest `keep` deleted. A run killed or out of disk
mid-save leaves the previous checkpoints intact (a failed save removes its temporary folder).
Weights that are not finite (NaN, inf) or above MAX_WEIGHT are neither saved nor loaded. Reading
verifies a checkpoint before it is used (utils/training/checkpoint_checks.py: a real folder named after its
step, of its own run, every key and file present and matching its SHA-256, no array larger than the
bytes stored for it, every number finite); a folder of checkpoints resolves to its newest intact one,
with a warning that names each one skipped and why. Loading then checks every dataset of each weight
file against the built network (its names, shapes and types, none extra) before a value is read.
Nothing is pickled: `.npz` files are read with allow_pickle=False.
"""

import errno
import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np

from utils.training.checkpoint_checks import (FILES, FORMAT, NETWORKS, CheckpointError, expected_layout,  # noqa: F401
                                      file_layout, layout_problem, load_json, sha256_of, state_checksum, verify,
                                      weight_problem)
from models import CycleGAN
from models.config import CycleGANConfig
from utils.runtime.disk_space import disk_full_error, file_size_limit, free_mb, is_disk_full
from utils.runtime.files import write_atomic, write_json

LATEST = "latest"   # the text file in a folder of checkpoints that names the newest
_warned = set()   # (checkpoint, reason) pairs already reported, so a resume warns once


def any_saved(directory):
    """Whether a folder of checkpoints holds any, intact or not (resuming then uses the newest intact
    one, or says that none is, rather than start over from step 0)."""
    directory = Path(directory)
    return (directory / LATEST).is_file() or any(p.is_dir() for p in directory.glob("ckpt-*"))


def latest_name(directory):
    """The checkpoint name a folder of checkpoints' `latest` file holds ('ckpt-00003000'), or None: the one
    reader of that file (which checkpoint a resume or a load actually uses is `find_intact`'s choice)."""
    latest = Path(directory) / LATEST
    try:
        if not latest.is_file():
            return None
        with open(latest, "rb") as f:   # a name of some 13 bytes: a huge file is not read
            return f.read(256).decode().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def newest_saved(directory):
    """The newest good checkpoint of a folder of checkpoints (verified: finite, sane, its manifest
    matching), or None: what an error message may call "the last good checkpoint"."""
    try:
        return find_intact(directory)[0]
    except (FileNotFoundError, CheckpointError):
        return None


def run_config_of(path):
    """The "model" dict of the run's config.json for a run's weights/ folder or one of its ckpt-* folders
    (None for a folder of checkpoints outside a run)."""
    path = Path(path)
    weights = path.parent if path.name.startswith("ckpt-") else path
    config_file = weights.parent / "config.json"
    if weights.name != "weights" or not config_file.is_file():
        return None
    try:
        meta = load_json(config_file, limit=16 << 20)
    except (OSError, ValueError):
        return None
    return meta.get("model") if isinstance(meta, dict) and "training" in meta else None


def find_intact(path):
    """(the checkpoint to use, [(damaged checkpoint, its problems)] skipped on the way).

    `path` is a ckpt-* folder (used only if intact) or a folder of them: the one its `latest` file
    names, then the others newest first, the first intact one wins (`verify`, checked against the
    run's config.json when `path` is inside a run folder).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no checkpoint in {path}: the folder does not exist")
    if (path / "state.json").exists() or path.name.startswith("ckpt-"):
        candidates = [path]
    else:
        found = sorted((p for p in path.glob("ckpt-*") if p.is_dir()), reverse=True)
        named = path / latest_name(path) if latest_name(path) else None
        candidates = ([named] if named in found else []) + [p for p in found if p != named]
    if not candidates:
        raise FileNotFoundError(f"no checkpoint in {path}: expected a ckpt-<step> folder with state.json, "
                                "written by utils.training.checkpoint.save")
    run_config = run_config_of(path)
    skipped = []
    for candidate in candidates:
        problems = verify(candidate, run_config)
        if not problems:
            return candidate, skipped
        skipped.append((candidate, problems))
    raise CheckpointError("no intact checkpoint in {}:\n  {}".format(
        path, "\n  ".join(problem for _, problems in skipped for problem in problems)))


def resolve(path):
    """The intact ckpt-* folder that `path` names; warns on stderr about each damaged one skipped."""
    found, skipped = find_intact(path)
    for damaged, problems in skipped:
        if (str(damaged), tuple(problems)) not in _warned:
            _warned.add((str(damaged), tuple(problems)))
            print(f"warning: skipping the damaged checkpoint {damaged} ({'; '.join(problems)}); "
                  f"using {found.name}", file=sys.stderr, flush=True)
    return found


def read_state(path):
    return load_json(resolve(path) / "state.json")   # verified: a valid, sealed state


def read_config(path):
    return CycleGANConfig.from_dict(read_state(path)["config"])


def save(gan, directory, keep=3):
    """Atomically save everything `gan` needs to resume into directory/ckpt-<step>; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    gan.build_optimizers()  # a checkpoint taken before the first step has the same variables as later ones
    for net in NETWORKS:
        bad = weight_problem(getattr(gan, net))
        if bad:
            raise CheckpointError(f"not saving a checkpoint of step {gan.step}: {net} {bad}; the checkpoints "
                                  f"in {directory} are kept as they are")
    name = f"ckpt-{gan.step:08d}"
    tmp = directory / f".tmp-{name}-{os.getpid()}-{time.time_ns()}"
    current = tmp
    try:
        _check_room(gan, directory)
        tmp.mkdir()
        for net in NETWORKS:
            current = tmp / f"{net}.weights.h5"
            getattr(gan, net).save_weights(current)
        arrays = {}
        for opt_name, optimizer in gan.optimizers.items():
            for i, variable in enumerate(optimizer.variables):
                arrays[f"{opt_name}/{i:04d}"] = keras.ops.convert_to_numpy(variable)
            arrays[f"{opt_name}/paths"] = np.array([v.path for v in optimizer.variables], dtype=str)
        current = tmp / "optimizers.npz"
        np.savez(current, **arrays)
        pool_A, rng_A = gan.pool_A.get_state()
        pool_B, rng_B = gan.pool_B.get_state()
        current = tmp / "pools.npz"
        np.savez(current, pool_A=pool_A, pool_B=pool_B)
        state = {"format": FORMAT, "config": gan.config.to_dict(), "epoch": gan.epoch, "batch": gan.batch,
                 "step": gan.step, "learning_rate": gan.learning_rate, "pool_rng": {"A": rng_A, "B": rng_B},
                 "keras_version": keras.__version__, "backend": keras.backend.backend(),
                 "files": {f: {"bytes": (tmp / f).stat().st_size, "sha256": sha256_of(tmp / f)} for f in FILES}}
        state["checksum"] = state_checksum(state)
        current = tmp / "state.json"
        write_json(current, state)   # last: its manifest covers the rest
        problems = verify(tmp)   # read back what the disk holds before it replaces anything
        if problems:
            raise CheckpointError(f"the checkpoint of step {gan.step} failed its check after writing: "
                                  f"{'; '.join(problems)}")
        final = directory / name
        if final.exists():  # re-saving the same step: move the old copy aside first
            old = directory / f".old-{name}-{time.time_ns()}"
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
        current = directory / LATEST
        write_atomic(current, name)
    except BaseException as error:
        shutil.rmtree(tmp, ignore_errors=True)   # never leave a half checkpoint filling the disk
        if is_disk_full(error):   # name the file as it would have been, not the removed temporary one
            file = Path(error.filename or current).name
            raise _disk_full(error, directory / name / file, directory) from None
        raise
    _prune(directory, keep)   # only now: the new checkpoint is in place and verified
    return final


def _check_room(gan, directory):
    """Refuse a save that cannot fit before writing a byte: h5py can crash the process (a segfault
    on closing the file) when a weight file's write fails, so the weight files are sized first.
    A compiled network's file also holds its optimizer's moments; Keras adds a few KB per variable."""
    def nbytes(variables):
        return sum(int(np.prod(v.shape)) * 4 for v in variables)

    weight_files = {}
    for net in NETWORKS:
        model = getattr(gan, net)
        variables = list(model.weights) + list(getattr(getattr(model, "optimizer", None), "variables", None) or [])
        weight_files[f"{net}.weights.h5"] = nbytes(variables) * 1.05 + 4096 * len(variables) + 65536
    need = sum(weight_files.values()) + sum(nbytes(o.variables) for o in gan.optimizers.values())
    limit = file_size_limit()
    too_big = [f for f, size in weight_files.items() if limit is not None and size > limit]
    if need > free_mb(directory) * 1e6 or too_big:
        raise OSError(errno.ENOSPC if not too_big else errno.EFBIG, "no room for a checkpoint",
                      too_big[0] if too_big else "")


def _disk_full(error, path, directory):
    try:
        last = find_intact(directory)[0]
    except (FileNotFoundError, CheckpointError):
        last = None
    return disk_full_error(error, path, last)


def _prune(directory, keep):
    """Delete all but the newest `keep` checkpoints and leftovers of interrupted saves."""
    for leftover in directory.glob(".tmp-ckpt-*"):  # this save's own folder is renamed already
        shutil.rmtree(leftover, ignore_errors=True)
    complete = sorted(p for p in directory.glob("ckpt-*") if (p / "state.json").is_file())
    for old in complete[:-keep] if keep else []:
        shutil.rmtree(old, ignore_errors=True)


def _read(path, what, reader):
    """reader() for the file `path`; a damaged file becomes a CheckpointError naming it."""
    try:
        return reader()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"cannot read {path} ({what}): {type(error).__name__}: {error}") from None


def restore(path):
    """A new CycleGAN built from the config stored in a checkpoint (a ckpt-* folder or a folder of them:
    the newest intact), with its whole state restored: how a run resumes."""
    gan = CycleGAN(read_config(path))
    load(gan, path)
    return gan


def load(gan, path):
    """Restore a checkpoint into `gan`, built with the same architecture (`restore` builds one to match)."""
    path = resolve(path)
    state = load_json(path / "state.json")
    saved = CycleGANConfig.from_dict(state["config"])
    mismatch = gan.config.architecture_mismatch(saved)
    if mismatch:
        raise ValueError(f"checkpoint {path} was saved from a different architecture ({'; '.join(mismatch)}, "
                         "checkpoint != this model). Build the model with the checkpoint's config: "
                         "utils.training.checkpoint.restore(path).")
    precision = (saved.mixed_precision, gan.config.mixed_precision)   # float16 adds the loss scale's variables
    gan.config = saved
    gan.compile_combined()  # the checkpoint's loss weights
    gan.build_optimizers()  # before load_weights, which also reads a compiled model's optimizer
    for net in NETWORKS:   # every file's datasets checked against the built networks before a value is read
        file = path / f"{net}.weights.h5"
        problem = layout_problem(file, _read(file, "Keras weights", lambda: file_layout(file)),
                                 expected_layout(getattr(gan, net)))
        if problem:
            raise CheckpointError(problem + (f" (mixed_precision {precision[0]!r} in the checkpoint, {precision[1]!r} "
                                             "here: build the model with utils.training.checkpoint.restore(path))"
                                             if precision[0] != precision[1] else ""))
        _read(file, "Keras weights", lambda: getattr(gan, net).load_weights(file))
        bad = weight_problem(getattr(gan, net))
        if bad:
            raise CheckpointError(f"{file}: {bad}: this checkpoint cannot be resumed; delete its folder to "
                                  "fall back to an older one")
    with _read(path / "optimizers.npz", "optimizer states",
               lambda: np.load(path / "optimizers.npz", allow_pickle=False)) as arrays:
        for opt_name, optimizer in gan.optimizers.items():
            paths = list(_read(path / "optimizers.npz", opt_name, lambda: arrays[f"{opt_name}/paths"]))
            if len(paths) != len(optimizer.variables):
                raise ValueError(f"checkpoint {path}: optimizer {opt_name} has {len(paths)} variables, "
                                 f"this model's has {len(optimizer.variables)} (mixed_precision "
                                 f"{precision[0]!r} in the checkpoint, {precision[1]!r} here): build the model "
                                 "with utils.training.checkpoint.restore(path)")
            for i, variable in enumerate(optimizer.variables):
                value = _read(path / "optimizers.npz", opt_name, lambda: arrays[f"{opt_name}/{i:04d}"])
                if tuple(value.shape) != tuple(variable.shape):
                    raise CheckpointError(f"{path / 'optimizers.npz'} holds {paths[i]} of shape {value.shape}, this "
                                          f"model's is {tuple(variable.shape)}: saved from a different architecture")
                if not np.all(np.isfinite(value)):
                    raise CheckpointError(f"{path / 'optimizers.npz'} holds non-finite values in {paths[i]}")
                variable.assign(value)
    with _read(path / "pools.npz", "image pools", lambda: np.load(path / "pools.npz", allow_pickle=False)) as pools:
        pool_A, pool_B = _read(path / "pools.npz", "image pools", lambda: (pools["pool_A"], pools["pool_B"]))
        gan.pool_A.set_state(pool_A, state["pool_rng"]["A"])
        gan.pool_B.set_state(pool_B, state["pool_rng"]["B"])
    gan.epoch, gan.batch, gan.step = state["epoch"], state["batch"], state["step"]
    return path
