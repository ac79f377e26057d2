"""Translate a folder of images with a trained CycleGAN, each at its original size.

    python translate.py run/cyclegan/0001_apple2orange --direction AtoB --input data/apple2orange/testA
    python translate.py run/cyclegan/0001_apple2orange/weights/ckpt-00010000 --direction BtoA \\
        --input my_photos --output my_photos_as_apples

    python translate.py pretrained/synthetic_apple2orange_64 --direction AtoB --input my_photos --max-side 512

AtoB uses g_AB (apple -> orange), BtoA uses g_BA. Each image is translated at its own size (the
generators are fully convolutional: utils/inference/translation.py); above --max-side (at most 8192; 0: no
limit) a scaled-down copy is translated and scaled back. --fit scales every image to the training size and
back instead.
Output PNGs are named after the inputs; files that cannot be read are named and skipped. The output
folder may not be the input folder (or inside it), and existing files are kept unless --overwrite.
"""

import sys
from pathlib import Path

from utils.runtime.onednn import prefer_onednn
from models.directions import DIRECTION_HELP, DIRECTIONS   # plain Python, no Keras
from utils.cli import ArgumentParser, run_main
from utils.cli import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported

# The largest --max-side: memory grows with the pixel count (the book's U-Net: about 1.9 GB at 1024 px, so some
# 120 GB at 8192); a larger number is a typo, and 0 already asks for every image at its full size.
MAX_SIDE = 8192


def main(argv=None):
    p = ArgumentParser(description="Translate every image of a folder with a trained CycleGAN generator.")
    p.add_argument("model", help="a run folder (its latest checkpoint is used), a checkpoint folder ckpt-* or a "
                   "model folder (config.json + g_AB/g_BA weights, e.g. pretrained/synthetic_apple2orange_64)")
    p.add_argument("--direction", required=True, choices=DIRECTIONS, help=DIRECTION_HELP)
    p.add_argument("--input", required=True, help="folder of images (any size, RGB or grayscale)")
    p.add_argument("--output", help="folder for the PNGs (default: <run folder>/translated/<direction>_<input name>)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    p.add_argument("--fit", action="store_true", help="scale each image to the training size and back "
                   "(the training view; blurs large images) instead of translating it at its own size")
    p.add_argument("--max-side", type=int, default=1024, help="translate images whose longer side is above this "
                   "as a scaled-down copy (memory grows with the pixel count; 0: no limit)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar and no closing line (there is no bar "
                   "anyway when the output is not a terminal, e.g. a log file)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    args = p.parse_args(argv)
    if args.max_side < 0:   # the checks that need no model come before TensorFlow's import (seconds)
        p.error(f"--max-side {args.max_side}: must be 0 (no limit) or a positive number of pixels")
    if args.max_side > MAX_SIDE:
        p.error(f"--max-side {args.max_side}: at most {MAX_SIDE} px (memory grows with the pixel count: about 1.9 GB "
                "at 1024 px for the book's U-Net); 0 translates every image at its full size")
    if not Path(args.model).exists():
        p.error(f"no such model: {args.model} (a run folder, a ckpt-* folder or a model folder)")
    if not Path(args.input).is_dir():
        p.error(f"--input {args.input}: no such folder")
    prefer_onednn("translation")   # TensorFlow's fastest CPU kernels for translating (utils/runtime/onednn.py)
    quiet(verbose=args.verbose)

    from utils.inference.translation import translate_folder
    try:
        written, skipped = translate_folder(args.model, args.direction, args.input, args.output,
                                            progress=False if args.no_progress else "auto", fit=args.fit,
                                            max_side=args.max_side, overwrite=args.overwrite)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    if not written:
        sys.exit(f"error: no image translated from {args.input}")


if __name__ == "__main__":
    run_main(main)
