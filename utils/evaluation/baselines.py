"""The translators a CycleGAN is scored beside, on images as floats in [0, 1]: the model itself and three
baselines it must beat. Each is a function `translate(images, direction) -> images`, images (n, h, w, 3).

    identity             no change: what a model that learned nothing scores
    histogram matching   each channel's histogram matched to the target domain's training pixels
    colour transfer      global Lab mean and std of the target domain (Reinhard et al. 2001)
    model_translator     a CycleGAN or a trained model folder's generators (models.generators.run_generator)
"""

import warnings

import numpy as np
from skimage import color

from models.directions import DIRECTIONS, DOMAINS, GENERATORS, domains
from models.generators import run_generator


def model_translator(model):
    """A translator on [0, 1] images for a CycleGAN or a utils.inference.trained_model.TrainedGenerators
    (both work on [-1, 1])."""
    def translate(images, direction):
        generator = model.generator(direction) if hasattr(model, "generator") else getattr(model, GENERATORS[direction])
        out = run_generator(generator, as_batch(images) * 2 - 1)
        return np.clip((np.asarray(out, np.float64) + 1) / 2, 0, 1)
    return translate


def as_batch(images):
    """(h, w, c) or (n, h, w, c) -> float64 (n, h, w, c)."""
    images = np.asarray(images, np.float64)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"expected an image (h, w, c) or a batch (n, h, w, c), got shape {images.shape}")
    return images


def identity_translator(images, direction):
    """The do-nothing baseline: every image stays as it is."""
    return np.asarray(images, np.float64)


class HistogramMatcher:
    """Match each image's per-channel histogram to the pooled training images of the target domain.

    train_A, train_B: (n, h, w, 3) in [0, 1]. The reference is all training pixels of a domain
    pooled, so each test image gets that domain's colour distribution, wherever its pixels are.
    The mapping is skimage.exposure.match_histograms' (the image's quantiles interpolated onto the
    reference's), with the reference's sorted values and quantiles computed once per domain instead
    of once per image and channel (with 200 reference images at 256 px, 1.4 s an image against
    0.011 s); the test checks the two give the same images.
    """

    def __init__(self, train_A, train_B):
        self.reference = {direction: _channel_quantiles(target) for direction, target in _targets(train_A, train_B)}

    def __call__(self, images, direction):
        out = []
        for image in as_batch(images):
            matched = np.empty_like(image)
            for channel, (values, quantiles) in enumerate(self.reference[direction]):
                _, lookup, counts = np.unique(image[..., channel].reshape(-1),
                                             return_inverse=True, return_counts=True)
                source_quantiles = np.cumsum(counts) / lookup.size
                matched[..., channel] = np.interp(source_quantiles, quantiles, values)[lookup].reshape(image.shape[:2])
            out.append(matched)
        return np.stack(out)


class ColourTransfer:
    """Global colour transfer (Reinhard et al. 2001): give each image the target's Lab mean and std.

    Per Lab channel: out = (x - mean(x)) / std(x) * std(target) + mean(target), where the target
    statistics are those of all training pixels of the target domain.
    """

    def __init__(self, train_A, train_B):
        self.stats = {direction: _lab_stats(target) for direction, target in _targets(train_A, train_B)}

    def __call__(self, images, direction):
        mean, std = self.stats[direction]
        out = []
        for image in as_batch(images):
            lab = color.rgb2lab(image)
            own_mean, own_std = lab.mean(axis=(0, 1)), lab.std(axis=(0, 1)) + 1e-6
            with warnings.catch_warnings():  # Lab colours outside sRGB are clipped, as intended
                warnings.simplefilter("ignore", UserWarning)
                out.append(np.clip(color.lab2rgb((lab - own_mean) / own_std * std + mean), 0, 1))
        return np.stack(out)


def _targets(train_A, train_B):
    """(direction, the training images of its target domain) for both directions: AtoB -> train_B."""
    train = dict(zip(DOMAINS, (train_A, train_B)))
    return [(direction, train[domains(direction)[1]]) for direction in DIRECTIONS]


def _stack(images):
    """(n, h, w, c) -> one tall image (n * h, w, c) holding every pixel."""
    images = as_batch(images)
    return images.reshape(-1, images.shape[2], images.shape[3])


def _channel_quantiles(images):
    """Per channel of images (n, h, w, c): (its distinct values, sorted; their cumulative share of the pixels)."""
    images = as_batch(images)
    pixels = images.reshape(-1, images.shape[-1])
    out = []
    for channel in range(pixels.shape[1]):
        values, counts = np.unique(pixels[:, channel], return_counts=True)
        out.append((values, np.cumsum(counts) / len(pixels)))
    return out


def _lab_stats(images):
    lab = color.rgb2lab(_stack(images))
    return lab.mean(axis=(0, 1)), lab.std(axis=(0, 1))


def baseline_translators(train_A, train_B):
    """The three baselines, by name, fitted on training images (n, h, w, 3) in [0, 1]."""
    return {"identity": identity_translator,
            "histogram matching": HistogramMatcher(train_A, train_B),
            "colour transfer": ColourTransfer(train_A, train_B)}
