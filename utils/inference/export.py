"""Export one trained generator for use outside this project, with Keras' own exporters.

    keras       `model.save("g_AB.keras")`: the Keras file; loading it needs Keras and this
                project's registered layers (models/layers.py), e.g. for fine-tuning.
    savedmodel  `model.export(dir, format="tf_saved_model")`: a TensorFlow SavedModel; loads with
                `tf.saved_model.load(dir).serve(x)`, no Keras and no code of this project.
    tflite      `model.export(file, format="litert")`: a TensorFlow Lite flat buffer (Keras runs
                TensorFlow's own converter); loads with LiteRT's interpreter (`pip install ai-edge-litert`,
                `ai_edge_litert.interpreter.Interpreter`; TensorFlow 2.21 deprecates `tf.lite.Interpreter`).
                Its height and width are fixed (default: the training size): with both left free
                the converter keeps some convolutions as TensorFlow ops (FlexConv2D) that the plain
                TFLite interpreter refuses to run.
    onnx        `model.export(file, format="onnx")`: optional, needs `tf2onnx` and `onnx` installed
                (not in requirements.txt); loads with `onnxruntime`.

The exported network is the generator built for any size (utils/inference/trained_model.py): input float32
(batch, height, width, channels) in [-1, 1], height and width multiples of 16 (U-Net) or 4
(ResNet), or the fixed `size`; output the same shape in [-1, 1]. `(pixels / 127.5) - 1` in, `(y + 1) * 127.5` out.

The export is written beside its target under a temporary name and renamed over it once complete, so a
failed export leaves no half file and a symbolic link at the target is replaced, never written through;
an existing target is replaced only with overwrite=True (`--overwrite`), and only when it is what an export
writes (`refuse_what_no_export_wrote`): a SavedModel folder of its own layout, a .keras file (a zip with
Keras' config.json) or a .tflite file (its TFL3 identifier); never the model's folder, a folder that holds
it, any other folder or file, or one that is (or links to) a file of the model itself. A write that fails
(a read-only folder, a full disk) is one `ExportWriteError` naming --out and its folder, not a traceback
naming the temporary file.
"""

import os
import shutil
import stat
import zipfile
from pathlib import Path

import keras

from models.directions import GENERATORS, check_direction
from utils.runtime.disk_space import remove_quietly
from utils.inference.trained_model import load_generators
from utils.inference.translation import refuse_existing, refuse_inputs
from utils.training import run_folder as layout

FORMATS = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}
KERAS_FORMAT = {"savedmodel": "tf_saved_model", "tflite": "litert", "onnx": "onnx"}
# What a SavedModel folder holds (TensorFlow's layout); anything else in it is not an export's.
SAVEDMODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}


def _looks_exported(out, fmt):
    """Why `out` (existing, not a link) is not what an export in `fmt` writes, or None if it is."""
    mode = os.lstat(out).st_mode
    if fmt == "savedmodel":
        if not stat.S_ISDIR(mode):
            return "not a SavedModel folder"
        entries = {entry.name for entry in os.scandir(out)}
        if "saved_model.pb" not in entries or entries - SAVEDMODEL_ENTRIES:
            return f"a folder that is not a SavedModel (it holds {', '.join(sorted(entries - SAVEDMODEL_ENTRIES)[:3]) or 'no saved_model.pb'})"
        for folder in ("variables", "assets"):
            inner = out / folder
            if inner.exists() and (inner.is_symlink() or not inner.is_dir() or any(
                    child.is_symlink() or child.is_dir() for child in inner.iterdir())):
                return f"a folder whose {folder}/ is not a SavedModel's"
        return None
    if not stat.S_ISREG(mode):
        return "a folder, not a file" if stat.S_ISDIR(mode) else "not a regular file"
    if fmt == "keras":
        try:
            with zipfile.ZipFile(out) as archive:
                return None if "config.json" in archive.namelist() else "a zip that is not a .keras file"
        except (OSError, zipfile.BadZipFile):
            return "not a .keras file (a zip with config.json)"
    if fmt == "tflite":
        with open(out, "rb") as f:
            return None if f.read(8)[4:8] == b"TFL3" else "not a .tflite file (no TFL3 identifier)"
    return None if out.suffix == FORMATS[fmt] else f"not a {FORMATS[fmt]} file"


def refuse_what_no_export_wrote(out, fmt, source=None):
    """ValueError unless an existing `out` may be replaced by an export in `fmt`: never the model's folder or
    one that holds it, only what an export writes (module docstring). A link at `out` is replaced itself."""
    out = Path(out)
    if out.is_symlink() or not out.exists():
        return
    if source is not None and isinstance(source, (str, Path)):
        model = Path(source).resolve()
        target = out.resolve()
        if target == model or target in model.parents:
            raise ValueError(f"--out {out} is the model's folder or holds it: --overwrite would delete the model; "
                             "choose another --out")
    why = _looks_exported(out, fmt)
    if why:
        raise ValueError(f"--out {out} exists and is {why}: --overwrite replaces only what an export wrote (a "
                         "SavedModel folder, a .keras or a .tflite file); choose another --out")


def default_path(source, direction, fmt):
    """`<model folder>/export/<g_AB|g_BA><ext>` (a checkpoint's or weights/' run folder, not weights/ itself)."""
    name = GENERATORS[check_direction(direction)] + ("_savedmodel" if fmt == "savedmodel" else "")
    return layout.run_folder_of(source) / layout.EXPORT / f"{name}{FORMATS[fmt]}"


def export_generator(source, direction, fmt, out=None, size=None, overwrite=False):
    """Export g_AB ('AtoB') or g_BA ('BtoA') of `source` (anything `load_generators` takes) as `fmt`.

    size: (height, width) to fix the input to (any batch); None leaves them free, except for tflite,
    which then takes the training size. overwrite: replace an existing `out`.

    Returns (path written, TrainedGenerators). ValueError for an unknown format; ImportError
    naming the package to install for onnx.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r}: must be one of {', '.join(FORMATS)}")
    if fmt == "onnx":
        import importlib.util
        missing = [name for name in ("tf2onnx", "onnx") if importlib.util.find_spec(name) is None]
        if missing:
            raise ImportError(f"ONNX export needs {' and '.join(missing)}: pip install {' '.join(missing)} "
                              "(optional, not pinned in requirements.txt)")
    model = load_generators(source)
    generator = model.generator(direction)   # raises ValueError for a bad direction
    if out is None:
        if not isinstance(source, (str, Path)):
            raise ValueError("out is needed when exporting from a CycleGAN object")
        out = default_path(source, direction, fmt)
    out = Path(out)
    if fmt == "keras" and out.suffix != ".keras":
        raise ValueError(f"{out}: a Keras file must end in .keras")
    if size is None and fmt == "tflite":
        size = model.config.input_dim[:2]
    signature = None
    if size is not None:
        if fmt == "keras":
            raise ValueError("size: a .keras file keeps the generator for any size; fix it when loading instead")
        height, width = (int(v) for v in size)
        if height < 1 or width < 1 or height % model.size_multiple or width % model.size_multiple:
            raise ValueError(f"size={height}x{width}: height and width must be positive multiples of "
                             f"{model.size_multiple} for the {model.config.generator_type} generator")
        signature = [keras.InputSpec(shape=(None, height, width, model.channels), dtype="float32")]
    refuse_existing([out], overwrite)
    refuse_what_no_export_wrote(out, fmt, source)
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        refuse_inputs([out], [p for p in Path(source).rglob("*") if p.is_file()])
    tmp = out.with_name(f".{out.stem}.tmp-{os.getpid()}{out.suffix}")   # Keras wants the suffix
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_quietly(tmp)
        if fmt == "keras":
            generator.save(tmp)
        else:
            generator.export(str(tmp), format=KERAS_FORMAT[fmt], verbose=False, input_signature=signature)
        if out.is_symlink():   # the link itself goes, not what it points to
            out.unlink()
        elif out.is_dir():   # a SavedModel folder: moved aside, then removed
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, out)
    except BaseException as error:
        remove_quietly(tmp)
        unwritable = _unwritable(error, out, tmp)
        if unwritable:
            raise unwritable from None
        raise
    return out, model


class ExportWriteError(ValueError):
    """The export could not be written where --out names (a read-only folder, a full disk)."""


def _unwritable(error, out, tmp):
    """ExportWriteError naming `out` and its folder for a write that failed (an OSError, or TensorFlow's own
    error naming the temporary file), or None for any other error. The temporary name is never shown: it
    is gone, and the user never chose it."""
    if isinstance(error, OSError):
        reason = error.strerror or str(error)
    elif isinstance(error, Exception) and str(tmp) in str(error):
        reason = str(error).strip().splitlines()[-1].replace(str(tmp), str(out))
    else:
        return None
    return ExportWriteError(f"--out {out}: cannot write into the folder {out.parent} ({reason}); choose an --out in a "
                            "folder you can write to, with room for the export")
