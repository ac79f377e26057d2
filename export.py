"""Export a trained generator as a .keras file, a TensorFlow SavedModel or a TensorFlow Lite model.

    python export.py pretrained/synthetic_apple2orange_64 --direction AtoB --format savedmodel
    python export.py run/cyclegan/0001_apple2orange --direction BtoA --format tflite --size 256 256 --out g_BA.tflite
    python export.py run/cyclegan/0001_apple2orange --direction AtoB --format keras

Keras' own exporters write the files (utils/inference/export.py). The exported generator takes float32
(batch, height, width, 3) in [-1, 1], height and width multiples of 16 (U-Net) or 4 (ResNet), and
returns the same shape in [-1, 1]. SavedModel and TFLite files load without this project's code.
TFLite fixes the height and width (--size, default the training size, at most 4096 px a side); the others
take any size. A bad --size is refused before TensorFlow is imported.
"""

import json
import sys
from pathlib import Path

from models.config import MAX_IMAGE_SIZE, SIZE_MULTIPLE   # no Keras in it
from models.directions import DIRECTION_HELP, DIRECTIONS   # plain Python, no Keras
from utils.cli import ArgumentParser, positive_int
from utils.training import run_folder as layout   # the run folder's file names; no Keras in it
from utils.cli import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported

USAGE = {
    "keras": "import models.layers; keras.models.load_model('{out}')  # with this project's models/ importable",
    "savedmodel": "tf.saved_model.load('{out}').serve(x)",
    "tflite": "pip install ai-edge-litert; from ai_edge_litert.interpreter import Interpreter; Interpreter('{out}'): "
              "allocate_tensors, set_tensor, invoke, get_tensor (tf.lite.Interpreter is deprecated in TensorFlow 2.21)",
    "onnx": "onnxruntime.InferenceSession('{out}').run(None, {{input_name: x}})",
}


def size_problem(size, fmt, generator=None):
    """What is wrong with a fixed export size (HEIGHT, WIDTH), or None; generator: 'unet', 'resnet' or None (not
    known yet: utils/inference/export.py checks again with the model's own multiple)."""
    if fmt == "keras":
        return "a .keras file keeps the generator for any size; fix the size when loading it instead"
    multiple = SIZE_MULTIPLE.get(generator)
    if any(side % (multiple or min(SIZE_MULTIPLE.values())) for side in size):
        return (f"height and width must be multiples of {multiple} for the {generator} generator" if multiple else
                "height and width must be multiples of 16 (U-Net) or 4 (ResNet)")
    if max(size) > MAX_IMAGE_SIZE:   # the converter and the interpreter plan every activation for that size
        return (f"at most {MAX_IMAGE_SIZE} px a side, the largest training size: memory grows with the pixel count "
                "(the book's U-Net: about 1.9 GB at 1024 px, 16 times that at 4096); for larger photos use "
                "translate.py, or a savedmodel or onnx export without --size, which takes any size")
    return None


def generator_type(model):
    """The generator type that the config of a run, checkpoint or model folder names, or None (unreadable: the
    export reads it properly, with its own errors)."""
    for name, key in ((layout.CHECKPOINT_STATE, "config"), (layout.CONFIG, "model")):
        path = Path(model) / name
        try:
            if path.is_file() and path.stat().st_size < 2**20:
                found = json.loads(path.read_text())[key]["generator_type"]
                return {"u-net": "unet"}.get(found, found) if found in (*SIZE_MULTIPLE, "u-net") else None
        except Exception:  # noqa: BLE001  (any damage: left to the export's own checks)
            return None
    return None


def main(argv=None):
    p = ArgumentParser(description="Export one trained CycleGAN generator with Keras' own exporters.")
    p.add_argument("model", help="a run folder, a checkpoint folder ckpt-* or a model folder (e.g. pretrained/...)")
    p.add_argument("--direction", required=True, choices=DIRECTIONS, help=DIRECTION_HELP)
    p.add_argument("--format", required=True, choices=("keras", "savedmodel", "tflite", "onnx"),
                   help="onnx needs tf2onnx and onnx installed (optional)")
    p.add_argument("--size", type=positive_int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                   help="fix the input's height and width (default: any size; tflite: the training size)")
    p.add_argument("--out", help="file or folder to write (default: <model folder>/export/<g_AB|g_BA>...)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists already")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    args = p.parse_args(argv)
    if not Path(args.model).exists():   # before TensorFlow's import (seconds)
        p.error(f"no such model: {args.model} (a run folder, a ckpt-* folder or a model folder)")
    if args.size:
        problem = size_problem(args.size, args.format, generator_type(args.model))
        if problem:
            p.error(f"--size {args.size[0]} {args.size[1]}: {problem}")
    quiet(verbose=args.verbose)

    from utils.inference.export import export_generator
    try:
        out, model = export_generator(args.model, args.direction, args.format, args.out, args.size,
                                      overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ImportError, ValueError) as error:
        sys.exit(f"error: {error}")
    size = args.size or (model.config.input_dim[:2] if args.format == "tflite" else None)
    shape = (f"(batch, {size[0]}, {size[1]}, {model.channels})" if size else
             f"(batch, height, width, {model.channels}), height and width multiples of {model.size_multiple},")
    print(f"wrote {out}\n  input: float32 {shape} in [-1, 1]; output: the same shape in [-1, 1]\n"
          f"  load: {USAGE[args.format].format(out=out)}")


if __name__ == "__main__":
    main()
