"""Do greens stay green? A figure for the hue swap of Monet -> photo (issue #33).

On most of Monet's paintings the shipped model turns meadows and trees red-brown. This measures it on
the pixels that are green in the input (hue 75-165 degrees, saturation >= 0.2, value >= 0.15, in HSV):
their mean hue before and after (a circular mean, in degrees) and the share of them still green after.

    green_kept(paintings, translations) -> {"green_pixels": share of the input's pixels that are green,
                                            "mean_hue_before": .., "mean_hue_after": .., "kept_green": ..}

Both arrays are (n, h, w, 3) in [0, 1], the same images in the same order (a translation keeps the size).
"""

import numpy as np
from skimage.color import rgb2hsv

GREEN_HUES = (75.0, 165.0)   # degrees: yellow-green to blue-green
MIN_SATURATION = 0.2         # greys and near-whites have no hue worth the name
MIN_VALUE = 0.15             # nor do near-blacks


def green_mask(images):
    """(n, h, w) bool: the pixels whose hue is green (GREEN_HUES), with enough saturation and value."""
    hsv = rgb2hsv(np.asarray(images, np.float64))
    hue = hsv[..., 0] * 360
    return (hue >= GREEN_HUES[0]) & (hue <= GREEN_HUES[1]) & (hsv[..., 1] >= MIN_SATURATION) & \
        (hsv[..., 2] >= MIN_VALUE)


def mean_hue(images, mask):
    """The circular mean hue in degrees [0, 360) of `images`' pixels under `mask` (None if there are none)."""
    if not mask.any():
        return None
    angle = rgb2hsv(np.asarray(images, np.float64))[..., 0][mask] * 2 * np.pi
    return float(np.degrees(np.arctan2(np.sin(angle).mean(), np.cos(angle).mean())) % 360)


def green_kept(inputs, outputs):
    """How the input's green pixels come out of a translation (module docstring)."""
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    if inputs.shape != outputs.shape or inputs.ndim != 4 or inputs.shape[-1] != 3:
        raise ValueError(f"green_kept takes two (n, h, w, 3) arrays of the same shape, got {inputs.shape} and "
                         f"{outputs.shape}")
    mask = green_mask(inputs)
    kept = green_mask(outputs) & mask
    return {"green_pixels": float(mask.mean()), "mean_hue_before": mean_hue(inputs, mask),
            "mean_hue_after": mean_hue(outputs, mask),
            "kept_green": float(kept.sum() / mask.sum()) if mask.any() else None}
