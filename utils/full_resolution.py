"""Translate an image at its own size: reflection-pad to the generator's multiple, translate, crop back.

Both generators are fully convolutional (only convolutions, instance norm and pointwise layers), so a
network trained on 64 px crops runs on a 256 px or 1024 px photo as it is; the official code does the
same with `--preprocess none`. Scaling the photo down to the training size and back (`--fit`,
utils/translate.py) throws away every detail finer than the model's pixels.

The height and width must be multiples of the generator's downsampling factor (U-Net: 2^4 = 16,
ResNet: 2^2 = 4, utils/trained_model.SIZE_MULTIPLE). The image is padded by reflection, as the
networks pad inside, so the border looks like the picture and not like a black frame.

Memory grows with the pixel count (measured in benchmarks/bench_full_resolution.py, README). Above
`max_side` the image is scaled down so its longer side is max_side, translated, and scaled back up.
Not tiled: instance normalisation takes each tile's own mean and variance, so tiles would come out
in visibly different tones with seams between them.
"""

import numpy as np
from PIL import Image

from utils.images import to_model_range, to_uint8

MIN_SIDE = 32        # smaller images are padded up to this (the U-Net's 16x downsampling leaves 2 x 2)
DEFAULT_MAX_SIDE = 1024


def pad_to_multiple(image, multiple, min_side=MIN_SIDE):
    """(h, w, c) array -> (padded (H, W, c), box): reflection-padded so H and W are multiples of `multiple`.

    box = (top, left, h, w) of the image inside the padded one; the padding is split evenly.
    """
    h, w = image.shape[:2]
    H = max(-(-h // multiple) * multiple, -(-min_side // multiple) * multiple)
    W = max(-(-w // multiple) * multiple, -(-min_side // multiple) * multiple)
    top, left = (H - h) // 2, (W - w) // 2
    pads = ((top, H - h - top), (left, W - w - left), (0, 0))
    # numpy reflects again and again when a pad is longer than the image; a 1-pixel side is repeated.
    mode = "reflect" if min(h, w) > 1 else "edge"
    return np.pad(image, pads, mode=mode), (top, left, h, w)


def scaled_size(hw, max_side):
    """(h, w) scaled so the longer side is at most max_side (None or 0: no limit); unchanged if it fits."""
    h, w = hw
    if not max_side or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _resize(image, hw):
    if image.shape[:2] == tuple(hw):
        return image
    channels = image.shape[-1]
    pil = Image.fromarray(image[..., 0] if channels == 1 else image)
    return np.asarray(pil.resize((hw[1], hw[0]), Image.BICUBIC)).reshape(hw[0], hw[1], channels)


class NonFiniteOutputError(ValueError):
    """The generator returned NaN or inf: saved as a PNG it would be a black image, so nothing is saved."""


def run_generator(generator, x):
    """A (batch, H, W, c) float32 batch through a Keras generator, as numpy (eager: no retrace per size).

    Raises NonFiniteOutputError if the output holds NaN or inf (to_uint8 would turn it into black).
    """
    import keras
    y = keras.ops.convert_to_numpy(generator(x, training=False))
    if not np.all(np.isfinite(y)):
        raise NonFiniteOutputError(f"{generator.name} returned NaN or inf for this image (its weights or the "
                                   "image are not sane): nothing written")
    return y


def translate_at_own_size(generator, image, multiple, max_side=DEFAULT_MAX_SIDE):
    """Translate one uint8 image (h, w, c) at its own size; returns uint8 (h, w, c).

    generator: a (None, None, c) Keras model (utils/trained_model.py), multiple: its size multiple.
    max_side: above it, translate a scaled-down copy (longer side max_side) and scale the result back.
    """
    hw = image.shape[:2]
    work_hw = scaled_size(hw, max_side)
    x, (top, left, h, w) = pad_to_multiple(_resize(image, work_hw), multiple)
    y = run_generator(generator, to_model_range(x)[None])[0]      # (H, W, c) in [-1, 1]
    out = to_uint8(y[top:top + h, left:left + w])                  # (h', w', c), the padding cut off
    return _resize(out, hw)
