"""Measured quality of a translation on a paired test set (the synthetic datasets).

The synthetic datasets (utils/datasets/synthetic.py) have PAIRED test sets: testA/x.png and testB/x.png show
the same scene in the two domains and testMask/x.png marks the fruit (white). So a translation can
be compared with the truth, which real unpaired data never allows. Per direction (AtoB, BtoA):

    paired_l1, psnr, ssim   translation vs. the true image of the other domain (skimage.metrics)
    background_change       mean |translation - input| outside the mask: what the identity loss
                            keeps small (book figure 5-9, the shelf behind the oranges)
    hue_error               circular distance in degrees between the mean hue of the translated
                            fruit and of the true fruit: did the apple become orange?
    cycle_error             mean |F(G(x)) - x|: the cycle-consistency loss (paper eq. 2) on test data

Every metric works on images as floats in [0, 1], shape (h, w, 3) or a batch (n, h, w, 3), and
masks as booleans (h, w) or (n, h, w), True on the fruit. L1 is in that [0, 1] scale (0.1 = a tenth
of the full range), half the value the training losses report on [-1, 1].

Translators, the model and the baselines alike (utils/evaluation/baselines.py), are functions
`translate(images, direction) -> images`, all scored by the same `evaluate_translator`.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import color, metrics

from models.directions import DIRECTIONS, DOMAINS, domains, reverse
from utils.evaluation import baselines
from utils.images import list_images, read_unit_images

METRICS = ("paired_l1", "fruit_l1", "psnr", "ssim", "background_change", "hue_error", "cycle_error")
# For the tables: whether a lower value is better.
LOWER_IS_BETTER = {"paired_l1": True, "fruit_l1": True, "psnr": False, "ssim": False, "background_change": True,
                   "hue_error": True, "cycle_error": True}


# ----------------------------------------------------------------- metrics on arrays
def _masks(masks, n):
    """(h, w) or (n, h, w) booleans -> (n, h, w)."""
    masks = np.asarray(masks, bool)
    if masks.ndim == 2:
        masks = np.broadcast_to(masks, (n,) + masks.shape)
    if masks.ndim != 3 or len(masks) != n:
        raise ValueError(f"expected masks (h, w) or ({n}, h, w), got shape {masks.shape}")
    return masks


def _check_pair(a, b):
    a, b = baselines.as_batch(a), baselines.as_batch(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} and {b.shape}")
    return a, b


def paired_l1(pred, true):
    """Mean absolute difference of images in [0, 1] (0 = identical, 1 = black vs. white)."""
    pred, true = _check_pair(pred, true)
    return float(np.mean(np.abs(pred - true)))


def masked_l1(pred, true, masks):
    """Paired L1 inside the masks only (the fruit): the error where the translation should change.

    The fruit covers about 13 % of a synthetic picture, so the whole-image `paired_l1` is mostly
    the background; this is the other part, measured separately.
    """
    pred, true = _check_pair(pred, true)
    inside = _masks(masks, len(pred))
    if not inside.any():
        raise ValueError("the masks are empty: there is no foreground to measure")
    return float(np.abs(pred - true)[inside].mean())


def psnr(pred, true):
    """Peak signal-to-noise ratio in dB, data range 1, averaged over the batch (inf if identical)."""
    pred, true = _check_pair(pred, true)
    with np.errstate(divide="ignore"):  # identical images: inf dB, by definition
        return float(np.mean([metrics.peak_signal_noise_ratio(t, p, data_range=1.0) for p, t in zip(pred, true)]))


def ssim(pred, true):
    """Structural similarity (Wang et al. 2004) over colour channels, data range 1, batch mean."""
    pred, true = _check_pair(pred, true)
    return float(np.mean([metrics.structural_similarity(t, p, channel_axis=-1, data_range=1.0)
                          for p, t in zip(pred, true)]))


def background_change(inputs, outputs, masks):
    """Mean absolute change between input and output outside the masks (the background).

    masks: True on the foreground (fruit), which is excluded. Averaged over all background pixels
    and channels of the batch; 0 when the translation leaves the background untouched.
    """
    inputs, outputs = _check_pair(inputs, outputs)
    background = ~_masks(masks, len(inputs))
    if not background.any():
        raise ValueError("the masks cover every pixel: there is no background to measure")
    return float(np.abs(outputs - inputs)[background].mean())


def mean_hue(images, masks):
    """Circular mean hue in degrees [0, 360) of the masked pixels, weighted by saturation.

    Hue is an angle, so 350 and 10 average to 0, not 180; grey pixels have no defined hue, so each
    pixel counts in proportion to its HSV saturation. Returns nan when no masked pixel has colour.
    """
    images = baselines.as_batch(images)
    hsv = color.rgb2hsv(np.clip(images, 0, 1))
    keep = _masks(masks, len(images))
    angle = 2 * np.pi * hsv[..., 0][keep]
    weight = hsv[..., 1][keep]
    x, y = np.sum(weight * np.cos(angle)), np.sum(weight * np.sin(angle))
    if np.hypot(x, y) < 1e-12:
        return float("nan")
    return float(np.degrees(np.arctan2(y, x)) % 360)


def hue_distance(hue_1, hue_2):
    """Circular distance in degrees between two hues: in [0, 180], e.g. 350 and 10 -> 20."""
    difference = abs(hue_1 - hue_2) % 360
    return float(min(difference, 360 - difference))


def hue_error(pred, true, masks):
    """Distance in degrees between the mean hue of `pred` and of `true` inside the masks."""
    pred, true = _check_pair(pred, true)
    return hue_distance(mean_hue(pred, masks), mean_hue(true, masks))


def translation_metrics(inputs, translations, targets, masks, reconstructions):
    """All seven metrics of one direction, as a dict keyed by `METRICS` (images in [0, 1]).

    inputs: the test images of the source domain; translations: the translator's outputs;
    targets: the paired true images of the target domain; masks: True on the fruit;
    reconstructions: the translations translated back (for the cycle error).
    """
    # A style dataset (synthetic_photo2painting) changes every pixel: its mask has no background.
    has_background = not np.asarray(masks, bool).all()
    return {"paired_l1": paired_l1(translations, targets),
            "fruit_l1": masked_l1(translations, targets, masks),
            "psnr": psnr(translations, targets),
            "ssim": ssim(translations, targets),
            "background_change": background_change(inputs, translations, masks) if has_background else float("nan"),
            "hue_error": hue_error(translations, targets, masks),
            "cycle_error": paired_l1(reconstructions, inputs)}


def evaluate_translator(translate, test_set):
    """Every metric in both directions: {"AtoB": {metric: value}, "BtoA": {...}}.

    translate(images, direction) -> images, all (n, h, w, 3) in [0, 1]; test_set: a dict with the
    paired arrays "A", "B" and the boolean fruit masks "mask" (see `load_test_set`).
    """
    results = {}
    for direction in DIRECTIONS:
        source, target = (test_set[domain] for domain in domains(direction))
        translations = translate(source, direction)
        reconstructions = translate(translations, reverse(direction))
        results[direction] = translation_metrics(source, translations, target, test_set["mask"], reconstructions)
    return results


# ----------------------------------------------------------------- data sets and runs
def load_test_set(dataset, img_res, data_root="data"):
    """The paired test set of a synthetic dataset at `img_res` (h, w).

    Returns {"names": [file names], "A": (n, h, w, 3), "B": (n, h, w, 3) floats in [0, 1],
    "mask": (n, h, w) booleans, True on the fruit}.
    """
    folder = Path(data_root) / dataset
    names = sorted(p.name for p in (folder / "testA").glob("*.png") if (folder / "testB" / p.name).is_file())
    if not names:
        raise FileNotFoundError(f"no paired test images in {folder}/testA and testB: create the dataset with "
                                f"utils.datasets.synthetic.ensure_dataset({dataset!r}, data_root={str(data_root)!r})")
    missing = [name for name in names if not (folder / "testMask" / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}/testMask lacks masks for {missing[:3]}: the evaluation needs the "
                                "paired synthetic test set with its fruit masks")
    # utils.images' one reader, bicubic as the data loader resizes test images; nearest keeps a mask black and white
    pictures = {d: read_unit_images([folder / f"test{d}" / n for n in names], img_res, dtype=np.float64)
                for d in DOMAINS}
    masks = read_unit_images([folder / "testMask" / n for n in names], img_res, Image.NEAREST, dtype=np.float64)
    return {"names": names, **pictures, "mask": masks.mean(axis=-1) > 0.5}


def load_train_images(dataset, img_res, data_root="data", limit=200, seed=0):
    """Up to `limit` training images of each domain, {"A": ..., "B": ...}, (n, h, w, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    out = {}
    for domain in DOMAINS:
        paths = sorted(list_images(Path(data_root) / dataset / f"train{domain}"))
        if not paths:
            raise FileNotFoundError(f"no training images in {Path(data_root) / dataset / f'train{domain}'}")
        if len(paths) > limit:
            paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
        out[domain] = read_unit_images(paths, tuple(img_res), dtype=np.float64)
    return out


def evaluate_baselines(dataset, img_res, data_root="data", test_set=None):
    """{baseline name: evaluate_translator(...)} on the same test images the model is scored on."""
    test_set = test_set if test_set is not None else load_test_set(dataset, img_res, data_root)
    train = load_train_images(dataset, img_res, data_root)
    return {name: evaluate_translator(translate, test_set)
            for name, translate in baselines.baseline_translators(train["A"], train["B"]).items()}
