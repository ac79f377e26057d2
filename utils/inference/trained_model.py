"""The two trained generators of a run, a checkpoint or a model folder, built for images of any size.

Training needs all four networks, their optimizers and the image pools; using a model needs only
g_AB and g_BA. `load_generators` reads them from any of:

    a CycleGAN object                      (a notebook's `gan`)
    a run folder                           run/cyclegan/0001_apple2orange (its latest checkpoint)
    a checkpoint folder                    run/cyclegan/0001_apple2orange/weights/ckpt-00003000
    a model folder (this module's layout)  pretrained/synthetic_apple2orange_64/

A model folder is what `save_model_folder` writes and what `pretrained/` ships: any folder with

    config.json       {"format": "cyclegan-generators/1", "model": <CycleGANConfig>, "dataset": ..., "made_by": ...,
                       "files": {"g_AB.weights.h5": {"bytes": ..., "sha256": ...}, ...}}
    g_AB.weights.h5   A -> B generator (Keras weight file; float32, or float16 to halve the size)
    g_BA.weights.h5   B -> A generator

Every load checks what it loads, as a checkpoint's is (utils/training/checkpoint_checks.py): config.json must be
an object whose "model" is a valid CycleGANConfig (integers where integers belong), the weight files of a
model folder must match the manifest in its config.json ("files": size and SHA-256 of each), every
dataset of a weight file must be one the configured generator has, of its shape, and none more (checked
before any value is read: a small file can hide a compressed dataset of billions of values), and the
weights of any source must be finite and within MAX_WEIGHT (1e4); otherwise one `ModelFileError` names
the file, and for weights of another architecture the setting that differs (`mismatch_line`). A folder
written before manifests is refused with the command that adds one
(`python -m utils.inference.trained_model --add-manifest FOLDER`, after checking the files are yours).

Both generators are fully convolutional, so they are rebuilt with input shape (None, None, c) and
the trained weights: the same network, now for any height and width that is a multiple of
`size_multiple` (utils/inference/translation.py pads to it).
"""

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from models import CycleGAN
from utils.training import checkpoint
from utils.training.checkpoint_checks import (CheckpointError, config_problem, expected_layout, file_layout, layout_difference,
                                      layout_problem, load_json, sha256_of, storage_problem, values_problems,
                                      weight_problem)
from models.config import RESNET_UPSAMPLING, UNET_UPSAMPLING, CycleGANConfig
from models.directions import GENERATORS, check_direction
from utils.runtime.files import write_json
from models.generators import build_resnet_generator, build_unet_generator
from utils.cli import run_main
from utils.training.run_folder import CONFIG, WEIGHTS

FORMAT = "cyclegan-generators/1"
WEIGHT_FILES = {"g_AB": "g_AB.weights.h5", "g_BA": "g_BA.weights.h5"}


class ModelFileError(CheckpointError):
    """A model folder's weight file that is damaged, replaced, unlisted or holds NaN, inf or huge weights."""


def manifest(folder):
    """{file name: {"bytes", "sha256"}} of a model folder's weight files, as written now."""
    folder = Path(folder)
    return {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256_of(folder / name)}
            for name in WEIGHT_FILES.values()}


def read_meta(config_file):
    """A model folder's (or run folder's) config.json as a dict; ModelFileError, one line naming the file,
    for anything else (too large, not JSON, nested 200,000 deep, a list)."""
    try:
        meta = load_json(config_file)
    except (OSError, ValueError) as error:
        raise ModelFileError(f"{config_file} is unreadable ({error}): copy the model folder again") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{config_file} holds a JSON {type(meta).__name__}, not a model folder's config (an "
                             f"object with \"format\": \"{FORMAT}\", \"model\" and \"files\"): copy the model "
                             "folder again")
    return meta


def model_config(config_file, meta):
    """The CycleGANConfig of a model folder's config.json; ModelFileError naming the file and the setting."""
    if "model" not in meta:
        raise ModelFileError(f"{config_file} has no \"model\" settings (the CycleGANConfig the weights were "
                             "trained with): copy the model folder again")
    problem = config_problem(meta["model"])
    if problem:
        raise ModelFileError(f"{config_file}: \"model\": {problem}")
    return CycleGANConfig.from_dict(meta["model"])


def _check_manifest(folder, meta):
    """ModelFileError naming the first weight file of a model folder that fails its manifest."""
    folder = Path(folder)
    listed = meta.get("files")
    if not isinstance(listed, dict):
        raise ModelFileError(f"{folder / CONFIG} has no manifest of its weight files (\"files\": their sizes and "
                             f"SHA-256), so they cannot be checked. If the files are yours, add one with: "
                             f"python -m utils.inference.trained_model --add-manifest {folder}")
    for name in WEIGHT_FILES.values():
        file = folder / name
        if file.is_symlink() or not file.is_file():
            raise ModelFileError(f"{file} is {'a symbolic link' if file.is_symlink() else 'missing'}: model "
                                 f"folder {folder} is incomplete")
        expected = listed.get(name)
        expected = expected if isinstance(expected, dict) else {}
        if file.stat().st_size != expected.get("bytes") or sha256_of(file) != expected.get("sha256"):
            raise ModelFileError(f"{file} does not match its size and SHA-256 in {folder / CONFIG} (damaged or "
                                 "replaced): copy the model folder again")


def _check_weights(file, generator, config, config_file):
    """ModelFileError if the weight file `file` does not fit `generator` (naming the setting that differs),
    or holds NaN, inf or a weight above MAX_WEIGHT. Shapes first: no value is read from a file that
    does not fit."""
    expected = expected_layout(generator)
    try:
        found, problem = file_layout(file), storage_problem(file)
    except (OSError, ValueError, KeyError) as error:
        raise ModelFileError(f"{file} is unreadable ({type(error).__name__}: {error})") from None
    if problem:
        raise ModelFileError(f"{problem}: this model cannot be used")
    if layout_difference(found, expected):
        raise ModelFileError(mismatch_line(file, found, expected, config, generator.name, config_file))
    problems = values_problems(file, expected)
    if problems:
        raise ModelFileError(f"{problems[0]}: this model cannot be used")


def check_model_folder(folder, meta):
    """ModelFileError naming the first problem of a model folder: its config, a weight file that fails its
    manifest, does not fit the configured generator, or holds NaN, inf or a weight above MAX_WEIGHT.
    Returns the folder's CycleGANConfig."""
    folder = Path(folder)
    config = model_config(folder / CONFIG, meta)
    _check_manifest(folder, meta)
    for net, name in WEIGHT_FILES.items():
        _check_weights(folder / name, build_any_size_generator(config, net), config, folder / CONFIG)
    return config


def mismatch_line(file, found, expected, config, net, config_file):
    """One line saying which setting of `config` the weight file `file` (datasets `found`) was not saved
    with, found by trying the settings its first kernel shows and the other generator layouts; or the
    first dataset that differs when no single change explains it (Keras' own error is a 135-line dump)."""
    tried = _candidates(found, config)
    for changes in tried:
        try:
            candidate = dataclasses.replace(config, **changes)
            if layout_difference(found, expected_layout(build_any_size_generator(candidate, net))) is None:
                differ = ", ".join(f"{field} {getattr(candidate, field)!r} (config.json says "
                                   f"{getattr(config, field)!r})"
                                   for field in changes if getattr(candidate, field) != getattr(config, field))
                return (f"{file} was saved from another architecture: {differ}; {config_file} does not describe "
                        "these weights. Copy the model folder again, or correct its \"model\" settings")
        except (ValueError, TypeError):
            continue
    return (f"{layout_problem(file, found, expected)} (the architecture of {config_file}; no single setting explains "
            "it): copy the model folder again")


def _candidates(found, config):
    """Settings to try, each a dict of changes: what the file's first kernel shows (its channels and
    filters), alone and with each other generator type and upsampling."""
    base = {}
    kernel = found.get("layers/conv2d/vars/0")
    if kernel is not None and len(kernel[0]) == 4:
        channels, filters = int(kernel[0][2]), int(kernel[0][3])
        if channels != config.input_dim[-1]:
            base["input_dim"] = (*config.input_dim[:2], channels)
        if filters != config.gen_n_filters:
            base["gen_n_filters"] = filters
    variants = [{}]
    other = "resnet" if config.generator_type == "unet" else "unet"
    variants.append({"generator_type": other})
    variants += [{"unet_upsampling": u} for u in UNET_UPSAMPLING if u != config.unet_upsampling]
    variants += [{"resnet_upsampling": u} for u in RESNET_UPSAMPLING if u != config.resnet_upsampling]
    candidates = []
    for variant in variants:
        changes = {**base, **variant}
        if changes.get("generator_type", config.generator_type) == "resnet":
            try:
                blocks = _resnet_blocks(found, dataclasses.replace(config, **changes))
            except (ValueError, TypeError):
                continue
            if blocks:
                changes["n_resnet_blocks"] = blocks
        if changes and changes not in candidates:
            candidates.append(changes)
    return candidates


def _resnet_blocks(found, config):
    """The residual blocks a ResNet generator of `config` needs to hold as many datasets as `found`, or None."""
    try:
        counts = [len(expected_layout(build_any_size_generator(dataclasses.replace(config, n_resnet_blocks=n), "g")))
                  for n in (1, 2)]
    except (ValueError, TypeError):
        return None
    per_block = counts[1] - counts[0]
    blocks, left = divmod(len(found) - counts[0], per_block) if per_block else (None, 1)
    return blocks + 1 if not left and blocks is not None and 0 <= blocks < 1024 else None


def add_manifest(folder):
    """Write the manifest of a model folder's weight files into its config.json (the files are not
    touched); refuses files that hold NaN, inf or huge weights. Returns the config.json path."""
    folder = Path(folder)
    meta = read_meta(folder / CONFIG)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{folder / CONFIG} is not a model folder's config ({FORMAT})")
    meta["files"] = manifest(folder)
    check_model_folder(folder, meta)
    return write_json(folder / CONFIG, meta)


@dataclass
class TrainedGenerators:
    """g_AB and g_BA for any image size, with the config they were trained with.

    config: the run's CycleGANConfig (config.input_dim is the training size).
    g_AB, g_BA: keras.Model, (batch, h, w, c) in [-1, 1] -> same shape in [-1, 1], h and w
        multiples of `size_multiple`.
    source: where they came from, for messages.
    meta: the config.json of the model folder, or of the run a run folder or checkpoint belongs to ({} when
        there is none or it is unreadable: a CycleGAN object, a checkpoint outside a run).
    checkpoint: the name of the checkpoint loaded ('ckpt-00003000'), None for a model folder or a CycleGAN.
    step: the training step of the weights, None where it is not recorded (a model folder).
    """

    config: CycleGANConfig
    g_AB: keras.Model
    g_BA: keras.Model
    source: str
    meta: dict = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None
    step: int | None = None

    @property
    def dataset(self):
        """The dataset it was trained on, as its config.json says, or None."""
        dataset = self.meta.get("dataset")
        return dataset if isinstance(dataset, str) else None

    def generator(self, direction):
        """'AtoB' -> g_AB, 'BtoA' -> g_BA."""
        return getattr(self, GENERATORS[check_direction(direction)])

    @property
    def size_multiple(self):
        return self.config.size_multiple

    @property
    def channels(self):
        return self.config.input_dim[-1]


def build_any_size_generator(config, name, dtype=None):
    """The config's generator with input shape (None, None, channels), fresh weights."""
    shape = (None, None, config.input_dim[-1])
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype or "float32")  # float32 even for a mixed-precision run
    try:
        if config.generator_type == "unet":
            return build_unet_generator(shape, config.gen_n_filters, name=name, upsampling=config.unet_upsampling)
        return build_resnet_generator(shape, config.gen_n_filters, config.n_resnet_blocks, name=name,
                                      upsampling=config.resnet_upsampling)
    finally:
        keras.config.set_dtype_policy(previous)


def is_model_folder(folder):
    """Whether `folder` is a model folder (config.json of FORMAT), not a run or a checkpoint; ModelFileError
    for a config.json that is unreadable."""
    config_file = Path(folder) / CONFIG
    return config_file.is_file() and read_meta(config_file).get("format") == FORMAT


def _run_meta(checkpoint_folder):
    """The config.json of the run a checkpoint belongs to (<run>/weights/ckpt-*), {} when it is outside a run or
    the file is missing or unreadable (the checkpoint's own state.json holds what loading needs)."""
    checkpoint_folder = Path(checkpoint_folder)
    if checkpoint_folder.parent.name != WEIGHTS:
        return {}
    config_file = checkpoint_folder.parent.parent / CONFIG
    try:
        return read_meta(config_file) if config_file.is_file() else {}
    except ModelFileError:
        return {}


def _weight_files(source):
    """(config, {"g_AB": path, "g_BA": path}, config.json path or None, {"meta", "checkpoint", "step"}) of a model
    folder (its config and manifest checked), run folder or checkpoint folder (verified:
    utils/training/checkpoint_checks.py)."""
    source = Path(source)
    config_file = source / CONFIG
    meta = read_meta(config_file) if config_file.is_file() else {}
    if meta.get("format") == FORMAT:  # a model folder
        files = {net: source / name for net, name in WEIGHT_FILES.items()}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"model folder {source} lacks {', '.join(missing)}")
        config = model_config(config_file, meta)
        _check_manifest(source, meta)
        return config, files, config_file, {"meta": meta}
    weights = source / WEIGHTS if (source / WEIGHTS).is_dir() else source
    try:
        ckpt = checkpoint.resolve(weights)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{source} holds no trained generators: expected a run folder (with weights/ckpt-*), a checkpoint "
            f"folder (ckpt-* with state.json) or a model folder (config.json + g_AB.weights.h5 + g_BA.weights.h5, "
            f"e.g. pretrained/synthetic_apple2orange_64)") from None
    state = checkpoint.read_state(ckpt)   # verified, as checkpoint.read_config reads it
    files = {net: ckpt / name for net, name in WEIGHT_FILES.items()}
    about = {"meta": meta or _run_meta(ckpt), "checkpoint": ckpt.name, "step": int(state["step"])}
    return CycleGANConfig.from_dict(state["config"]), files, None, about


def load_generators(source):
    """TrainedGenerators from a CycleGAN, a run folder, a checkpoint folder or a model folder: the one way to
    load a trained model to use it (translate.py, export.py, the page, evaluate.py, the ablation, the
    notebooks). Resuming training restores the whole CycleGAN instead (utils/training/trainer.load_run)."""
    if isinstance(source, TrainedGenerators):
        return source
    if isinstance(source, CycleGAN):
        config, generators = source.config, {}
        for net in WEIGHT_FILES:
            generators[net] = build_any_size_generator(config, net)
            generators[net].set_weights(getattr(source, net).get_weights())
        return TrainedGenerators(config, generators["g_AB"], generators["g_BA"], "a CycleGAN object",
                                 step=int(source.step))
    if not Path(source).exists():
        raise FileNotFoundError(f"no such model: {source} (give a run folder, a checkpoint folder or a model "
                                "folder such as pretrained/synthetic_apple2orange_64)")
    config, files, config_file, about = _weight_files(source)
    generators = {}
    for net, path in files.items():
        generators[net] = build_any_size_generator(config, net)
        if config_file is not None:   # a model folder: shapes against its config, then the values, bounded
            _check_weights(path, generators[net], config, config_file)
        else:   # a verified checkpoint: its values are checked; its shapes against its own config here
            problem = layout_problem(path, file_layout(path), expected_layout(generators[net]))
            if problem:
                raise ModelFileError(problem)
        generators[net].load_weights(path)  # a float16 file is cast to the float32 variables
        problem = weight_problem(generators[net])   # a float32 value beyond float16's range -> inf
        if problem:
            raise ModelFileError(f"{path}: {problem}: this model cannot be used")
    return TrainedGenerators(config, generators["g_AB"], generators["g_BA"], str(source), **about)


def save_model_folder(source, out, made_by, float16=False, notes=None, dataset=None):
    """Write the model folder `out` (config.json + both generators' weights) from any `load_generators` source.

    made_by: how the model was trained (the exact command), kept in config.json.
    dataset: the training dataset's name (default: the run folder's, when `source` is one).
    float16: store the weights in float16 (half the size; translations differ by about 1e-3).
    Returns the folder's Path. The files are written aside and moved in once all are complete, with their
    manifest (sizes and SHA-256) in config.json; other files of an existing folder (README.md,
    metrics.json) are kept.
    """
    trained = load_generators(source)
    for net in WEIGHT_FILES:
        problem = weight_problem(getattr(trained, net))
        if problem:
            raise ModelFileError(f"not writing {out}: {net} {problem}")
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for net, name in WEIGHT_FILES.items():
        model = getattr(trained, net)
        if float16:
            half = build_any_size_generator(trained.config, net, dtype="float16")
            half.set_weights([np.asarray(w, np.float16) for w in model.get_weights()])
            model = half
        model.save_weights(tmp / name)
    dataset = trained.dataset if dataset is None else dataset
    meta = {"format": FORMAT, "model": trained.config.to_dict(), "dataset": dataset, "made_by": made_by,
            "weights_dtype": "float16" if float16 else "float32", "keras_version": keras.__version__}
    if notes:
        meta["notes"] = notes
    meta["files"] = manifest(tmp)
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    out.mkdir(parents=True, exist_ok=True)
    for name in (*WEIGHT_FILES.values(), CONFIG):   # config.json last: it names a complete folder
        os.replace(tmp / name, out / name)
    tmp.rmdir()
    return out


if __name__ == "__main__":
    import argparse

    def main(argv=None):
        parser = argparse.ArgumentParser(description="Write a model folder (config.json + g_AB/g_BA weights) "
                                         "from a run or checkpoint, for translate.py, export.py and serve.py; "
                                         "or add the manifest to an existing model folder.")
        parser.add_argument("source", nargs="?", help="a run folder or a checkpoint folder")
        parser.add_argument("out", nargs="?", help="the model folder to write, e.g. pretrained/apple2orange_128")
        parser.add_argument("--made-by", help="the exact training command, kept in config.json")
        parser.add_argument("--float16", action="store_true", help="store the weights in float16 (half the size)")
        parser.add_argument("--add-manifest", metavar="FOLDER", help="write the sizes and SHA-256 of FOLDER's weight "
                            "files into its config.json (the weights are not changed)")
        args = parser.parse_args(argv)
        if args.add_manifest:
            print(f"wrote the manifest into {add_manifest(args.add_manifest)}")
        elif args.source and args.out and args.made_by:
            print(save_model_folder(args.source, args.out, args.made_by, float16=args.float16))
        else:
            parser.error("give SOURCE OUT --made-by COMMAND, or --add-manifest FOLDER")

    run_main(main)
