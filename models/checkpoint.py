"""Atomic, pickle-free checkpoints of a `CycleGAN`: everything a run needs to go on.

Layout of one checkpoint, `<directory>/ckpt-<step>/`:

    g_AB.weights.h5, g_BA.weights.h5, d_A.weights.h5, d_B.weights.h5   Keras weight files
    optimizers.npz   Adam states of d_A, d_B and the combined model (iterations, learning rate,
                     moments), keyed '<optimizer>/<index>' with the variable paths beside them
    pools.npz        the two histories of generated images
    state.json       format version, config, epoch / batch / step, pool RNG states, versions

It is written into a temporary folder and renamed into place only when complete, then the text
file `<directory>/latest` is replaced (also atomically) to name it: a run killed mid-save leaves the
previous checkpoint intact. Nothing is pickled: `.npz` files are read with allow_pickle=False.
"""

import json
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from models.config import CycleGANConfig

FORMAT = "cyclegan-checkpoint/1"
NETWORKS = ("g_AB", "g_BA", "d_A", "d_B")


def _atomic_write_text(path, text):
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def resolve(path):
    """The ckpt-* folder that `path` names: itself, the one in its `latest` file, or its newest."""
    path = Path(path)
    if (path / "state.json").is_file():
        return path
    latest = path / "latest"
    if latest.is_file():
        named = path / latest.read_text().strip()
        if (named / "state.json").is_file():
            return named
    candidates = sorted(p for p in path.glob("ckpt-*") if (p / "state.json").is_file())
    if not candidates:
        raise FileNotFoundError(f"no checkpoint in {path}: expected a ckpt-<step> folder with state.json, "
                                "written by CycleGAN.save_checkpoint")
    return candidates[-1]


def read_state(path):
    state = json.loads((resolve(path) / "state.json").read_text())
    if state.get("format") != FORMAT:
        raise ValueError(f"{resolve(path)} is not a {FORMAT} checkpoint (format={state.get('format')!r})")
    return state


def read_config(path):
    return CycleGANConfig.from_dict(read_state(path)["config"])


def save(gan, directory, keep=3):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{gan.step:08d}"
    tmp = directory / f".tmp-{name}-{os.getpid()}-{time.time_ns()}"
    tmp.mkdir()
    gan.build_optimizers()  # a checkpoint taken before the first step has the same variables as later ones
    for net in NETWORKS:
        getattr(gan, net).save_weights(tmp / f"{net}.weights.h5")
    arrays = {}
    for opt_name, optimizer in gan.optimizers.items():
        for i, variable in enumerate(optimizer.variables):
            arrays[f"{opt_name}/{i:04d}"] = keras.ops.convert_to_numpy(variable)
        arrays[f"{opt_name}/paths"] = np.array([v.path for v in optimizer.variables], dtype=str)
    np.savez(tmp / "optimizers.npz", **arrays)
    pool_A, rng_A = gan.pool_A.get_state()
    pool_B, rng_B = gan.pool_B.get_state()
    np.savez(tmp / "pools.npz", pool_A=pool_A, pool_B=pool_B)
    state = {"format": FORMAT, "config": gan.config.to_dict(), "epoch": gan.epoch, "batch": gan.batch,
             "step": gan.step, "learning_rate": gan.learning_rate, "pool_rng": {"A": rng_A, "B": rng_B},
             "keras_version": keras.__version__, "backend": keras.backend.backend()}
    _atomic_write_text(tmp / "state.json", json.dumps(state, indent=2))

    final = directory / name
    if final.exists():  # re-saving the same step: move the old copy aside first
        old = directory / f".old-{name}-{time.time_ns()}"
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, final)
    _atomic_write_text(directory / "latest", name)
    _prune(directory, keep)
    return final


def _prune(directory, keep):
    """Delete all but the newest `keep` checkpoints and leftovers of interrupted saves."""
    for leftover in directory.glob(".tmp-ckpt-*"):  # this save's own folder is renamed already
        shutil.rmtree(leftover, ignore_errors=True)
    complete = sorted(p for p in directory.glob("ckpt-*") if (p / "state.json").is_file())
    for old in complete[:-keep] if keep else []:
        shutil.rmtree(old, ignore_errors=True)


def load(gan, path):
    path = resolve(path)
    state = read_state(path)
    saved = CycleGANConfig.from_dict(state["config"])
    mismatch = gan.config.architecture_mismatch(saved)
    if mismatch:
        raise ValueError(f"checkpoint {path} was saved from a different architecture ({'; '.join(mismatch)}, "
                         "checkpoint != this model). Build the model with the checkpoint's config: "
                         "CycleGAN.from_checkpoint(path).")
    precision = (saved.mixed_precision, gan.config.mixed_precision)   # float16 adds the loss scale's variables
    gan.config = saved
    gan._compile_combined()  # the checkpoint's loss weights
    gan.build_optimizers()  # before load_weights, which also reads a compiled model's optimizer
    for net in NETWORKS:
        getattr(gan, net).load_weights(path / f"{net}.weights.h5")
    with np.load(path / "optimizers.npz", allow_pickle=False) as arrays:
        for opt_name, optimizer in gan.optimizers.items():
            paths = list(arrays[f"{opt_name}/paths"])
            if len(paths) != len(optimizer.variables):
                raise ValueError(f"checkpoint {path}: optimizer {opt_name} has {len(paths)} variables, "
                                 f"this model's has {len(optimizer.variables)} (mixed_precision "
                                 f"{precision[0]!r} in the checkpoint, {precision[1]!r} here): build the model "
                                 "with CycleGAN.from_checkpoint(path)")
            for i, variable in enumerate(optimizer.variables):
                variable.assign(arrays[f"{opt_name}/{i:04d}"])
    with np.load(path / "pools.npz", allow_pickle=False) as pools:
        gan.pool_A.set_state(pools["pool_A"], state["pool_rng"]["A"])
        gan.pool_B.set_state(pools["pool_B"], state["pool_rng"]["B"])
    gan.epoch, gan.batch, gan.step = state["epoch"], state["batch"], state["step"]
    return path
