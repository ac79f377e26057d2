"""Translate a folder of images with a trained CycleGAN, each at its original size.

    python translate.py run/cyclegan/0001_apple2orange --direction AtoB --input data/apple2orange/testA
    python translate.py run/cyclegan/0001_apple2orange/weights/ckpt-00010000 --direction BtoA \\
        --input my_photos --output my_photos_as_apples

AtoB uses g_AB (apple -> orange), BtoA uses g_BA. Images of any size and mode are scaled to fit the
generator, reflection-padded, translated and brought back to their size (utils/translate.py).
Output PNGs are named after the inputs; files that cannot be read are named and skipped.
"""

import argparse
import sys

from utils.quiet import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported


def main(argv=None):
    p = argparse.ArgumentParser(description="Translate every image of a folder with a trained CycleGAN generator.")
    p.add_argument("model", help="a run folder (its latest checkpoint is used) or a checkpoint folder ckpt-*")
    p.add_argument("--direction", required=True, choices=("AtoB", "BtoA"), help="AtoB: g_AB, BtoA: g_BA")
    p.add_argument("--input", required=True, help="folder of images (any size, RGB or grayscale)")
    p.add_argument("--output", help="folder for the PNGs (default: <run folder>/translated/<direction>_<input name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    args = p.parse_args(argv)
    quiet(verbose=args.verbose)

    from utils.translate import translate_folder
    try:
        written, skipped = translate_folder(args.model, args.direction, args.input, args.output,
                                            progress=not args.no_progress)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    if not written:
        sys.exit(f"error: no image translated from {args.input}")


if __name__ == "__main__":
    main()
