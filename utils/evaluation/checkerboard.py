"""A checkerboard score: how strongly an image shows the 2- and 4-pixel grid that stride-2 upsampling leaves.

    python -m utils.evaluation.checkerboard FOLDER [FOLDER ...]     # one line a folder: median and p90
    python -m utils.evaluation.checkerboard photos --model pretrained/monet2photo_256 --direction BtoA
                                            # the same for the model's translations (own size, nothing written)

A transposed convolution of stride 2 (or a nearest-neighbour upsampling before a convolution) repeats its
kernel's uneven overlap every 2 output pixels; two such steps repeat it every 4 (Odena et al. 2016,
"Deconvolution and checkerboard artifacts"). In the image's 2-D spectrum that grid is a set of sharp peaks at
the multiples of 1/4 cycle per pixel: (fy, fx) = (1/2, 0), (0, 1/2), (1/2, 1/2), (1/4, 0), (0, 1/4),
(1/4, 1/4), (1/4, -1/4), (1/4, 1/2) and (1/2, 1/4) (their mirror images have the same power in a real
image). A real photo or painting has a smooth spectrum there.

Per image (`checkerboard_score`):
1. luminance (BT.601, the Y of JPEG, so a JPEG's subsampled colour adds no grid of its own);
2. tiles of 64 x 64 px every 32 px, because the grid shows on smooth areas (skies, water, skin) and the
   spectrum of a whole textured picture drowns it; each tile has its mean removed and a periodic Hann
   window (nothing leaks from its edges, and a grid's peak lies in the 3 x 3 bins around its frequency);
3. per tile and frequency, the ratio of the peak's power (the 3 x 3 bins, weighted as the window spreads
   a peak: 1, 1/4, 1/16) to the mean power 2 to 4 bins away (for a frequency on an axis, only beside it
   along that axis: the axes carry the edges of a picture's horizontal and vertical lines). Both get
   NOISE_FLOOR's power added, that of white noise of one grey level: a nearly flat tile (a clear sky) has
   almost no power anywhere, and without it any trace of a pattern would be a huge ratio. The tile's score
   is log10 of the mean ratio over the 9 frequencies (the mean of the ratios, not of their logs: a
   2-pixel checkerboard has all its power at (1/2, 1/2) alone). About 0.1 for a real tile, 1 for a grid
   that stands 10 times above its surroundings;
4. the image's score: the 0.9 quantile over its tiles, so a grid on a tenth of the picture counts but
   one odd tile does not. Tiles flatter than FLAT_STD (saturated white, a blank border) are left out: they
   can show no grid (an earlier attempt that kept only the smoothest tiles scored flat white
   backgrounds). An image with no tile left scores 0.

Score PNGs: JPEG's 8 x 8 blocks are periodic too, with harmonics at 1/4 and 1/2, so a very smooth picture
saved as a JPEG of quality 75 or less scores 0.4 to 1 (real JPEG photos, with their grain, stay about 0.1).

A folder's figure (`folder_summary`): the median and the 90th percentile over its images. On monet2photo
(docs/results/checkerboard_monet2photo.json, median / p90): the real test paintings 0.13 / 0.18 and photos
0.11 / 0.16; pretrained/monet2photo_256's translations 1.67 / 2.14 (photo -> Monet), 1.51 / 1.83 (back).
"""

import json
import shlex
import sys
from pathlib import Path

import numpy as np

from models.directions import DIRECTION_HELP, DIRECTIONS
from utils.runtime.files import write_json
from utils.training import run_folder as layout

TILE = 64               # px; a multiple of 4, so 1/4 and 1/2 cycle per pixel fall on exact bins
STRIDE = 32             # tiles overlap by half: the window weighs a tile's edges down
RING = (2, 4)           # the reference bins: 2 to 4 bins from the frequency (Chebyshev distance)
NOISE_FLOOR = 1 / 255   # std of the white noise whose power is added to every bin's (one grey level)
FLAT_STD = 0.5 / 255    # tiles whose luminance std is below this are nearly constant: left out
TILE_QUANTILE = 0.9     # the image's score: this quantile over its tiles
MIN_SIDE = 32           # below it, the frequencies' surroundings would overlap each other
LUMA = np.array([0.299, 0.587, 0.114])   # BT.601, as JPEG's Y
# The target frequencies (fy, fx) in cycles per pixel, one of each mirror pair.
FREQUENCIES = ((0, 0.5), (0.5, 0), (0.5, 0.5), (0, 0.25), (0.25, 0), (0.25, 0.25), (0.25, -0.25),
               (0.25, 0.5), (0.5, 0.25))


def luminance(image):
    """(h, w, 3), (h, w, 1) or (h, w) in [0, 1] (or uint8 in [0, 255]) -> (h, w) float32 luminance in [0, 1]."""
    image = np.asarray(image)
    scale = np.float32(1 / 255 if image.dtype == np.uint8 else 1)
    if image.ndim == 3 and image.shape[-1] == 3:
        # Channel by channel in float32: a 90-megapixel photo never needs more than a few copies of one channel.
        y = sum(image[..., c].astype(np.float32) * np.float32(LUMA[c] * scale) for c in range(3))
    elif image.ndim == 3 and image.shape[-1] == 1:
        y = image[..., 0].astype(np.float32) * scale
    elif image.ndim == 2:
        y = image.astype(np.float32) * scale
    else:
        raise ValueError(f"expected an image (h, w, 3) or (h, w), got shape {image.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("the image has NaN or infinite pixels: no checkerboard score")
    if y.size and (y.min() < -0.01 or y.max() > 1.01):
        raise ValueError(f"pixels range over [{y.min():.3g}, {y.max():.3g}]: give floats in [0, 1] "
                         "(or uint8 in [0, 255])")
    return y


def _window(n):
    """The periodic Hann window (n x n): a peak at an exact bin spreads over 3 x 3 bins, no further."""
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    return np.outer(w, w)


def _bins(n):
    """For each target frequency: (peak bins, their weights, reference bins), indices into an n x n spectrum."""
    offsets = np.arange(-RING[1], RING[1] + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    distance = np.maximum(abs(dy), abs(dx))
    peak = distance <= 1
    weights = (0.25 ** abs(dy[peak])) * (0.25 ** abs(dx[peak]))   # the window's power spread: 1, 1/4, 1/16
    bins = []
    for fy, fx in FREQUENCIES:
        ky, kx = round(fy * n), round(fx * n)
        ring = (distance >= RING[0]) & (distance <= RING[1])
        if fy == 0:                      # on an axis: only the bins beside it along that axis
            ring &= abs(dy) <= 1
        elif fx == 0:
            ring &= abs(dx) <= 1

        def index(mask):
            return ((ky + dy[mask]) % n) * n + (kx + dx[mask]) % n   # the spectrum is periodic

        bins.append((index(peak), weights / weights.sum(), index(ring)))
    return bins


def tile_scores(image, tile=TILE, stride=STRIDE):
    """The score of each tile of one image that is not nearly constant, a 1-D float64 array (empty when
    all are). An image smaller than `tile` is one tile, of the largest multiple of 4 that fits."""
    y = luminance(image)
    h, w = y.shape
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"an image of {w}x{h} px is too small for a checkerboard score "
                         f"(at least {MIN_SIDE}x{MIN_SIDE})")
    n = min(tile, (min(h, w) // 4) * 4)
    # Every `stride` px, and one more flush with the far edge so that no strip is left out.
    tops = sorted(set(range(0, h - n + 1, stride)) | {h - n})
    lefts = sorted(set(range(0, w - n + 1, stride)) | {w - n})
    window, bins = _window(n), _bins(n)
    floor = NOISE_FLOOR ** 2 * np.sum(window ** 2)   # the power per bin of white noise of that std
    scores = []
    for top in tops:   # one row of tiles at a time: memory stays a few rows of the image, at any size
        tiles = np.stack([y[top:top + n, left:left + n] for left in lefts]).astype(np.float64)
        tiles = tiles[tiles.std(axis=(1, 2)) >= FLAT_STD]
        if not len(tiles):
            continue
        spectra = np.fft.fft2((tiles - tiles.mean(axis=(1, 2), keepdims=True)) * window)
        power = (spectra.real ** 2 + spectra.imag ** 2).reshape(len(tiles), -1) + floor
        ratios = [(power[:, peak] @ weights) / power[:, ring].mean(axis=1) for peak, weights, ring in bins]
        scores.append(np.log10(np.mean(ratios, axis=0)))
    return np.concatenate(scores) if scores else np.zeros(0)


def checkerboard_score(image):
    """The checkerboard score of one image (h, w, 3) in [0, 1]: about 0.1 for a real photo or painting,
    above 1 for a visible 2- or 4-pixel grid. See the module docstring."""
    scores = tile_scores(image)
    return float(np.quantile(scores, TILE_QUANTILE)) if len(scores) else 0.0


def image_scores(images):
    """The scores of a batch (n, h, w, 3), of one image (h, w, 3), or of a list of images of any sizes."""
    if not isinstance(images, np.ndarray) and not np.isscalar(images):
        return np.array([checkerboard_score(image) for image in images], np.float64)
    images = np.asarray(images)
    if images.ndim == 3 and images.shape[-1] in (1, 3):
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"expected an image (h, w, 3) or a batch (n, h, w, 3), got shape {images.shape}")
    return np.array([checkerboard_score(image) for image in images], np.float64)


def summary(scores):
    """{"median", "p90", "n"} of per-image scores."""
    scores = np.asarray(scores, np.float64)
    if not scores.size:
        raise ValueError("no images to score")
    return {"median": float(np.median(scores)), "p90": float(np.quantile(scores, 0.9)), "n": int(scores.size)}


def folder_summary(images):
    """A set of images in one figure: {"median", "p90", "n"} of their checkerboard scores.

    images: a folder (each image file read at its own size), a batch (n, h, w, 3) in [0, 1] or a list of
    (h, w, 3) arrays of any sizes."""
    if isinstance(images, (str, Path)):
        return summary(folder_scores(images))
    return summary(image_scores(images))


def folder_scores(folder, limit=None, warn=None, transform=None):
    """The score of each image file in `folder` at its own size, in file-name order (`limit`: the first n).
    transform: uint8 (h, w, 3) -> uint8 (h, w, 3) applied first (a translation). Unreadable files are
    skipped, each named through `warn` (default: a line on stderr)."""
    from utils.images import ImageReadError, list_images, read_rgb
    warn = warn or (lambda message: print(message, file=sys.stderr))
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(f"no images in {folder}: give a folder of image files (PNG, JPEG, ...)")
    scores = []
    for path in paths:
        if limit is not None and len(scores) >= limit:
            break
        try:
            image = read_rgb(path)
        except ImageReadError as error:
            warn(f"warning: skipped: {error}")
            continue
        if min(image.shape[:2]) < MIN_SIDE:
            warn(f"warning: skipped: {path} is {image.shape[1]}x{image.shape[0]} px, under {MIN_SIDE} px a side")
            continue
        scores.append(checkerboard_score(image if transform is None else transform(image)))
    if not scores:
        raise FileNotFoundError(f"no image in {folder} could be scored (each was unreadable or too small)")
    return np.array(scores)


def _read_record(path):
    """The figures already in a --json-out file ({} for a new one); ValueError if it is something else."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json-out {path} is a folder: give a file name")
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("figures"), dict):
        raise ValueError(f"--json-out {path}: not a file this command wrote (no \"figures\"): give a new file")
    return record["figures"]


def main(argv=None):
    from utils.cli import ArgumentParser, positive_int
    p = ArgumentParser(prog="python -m utils.evaluation.checkerboard",
                       description="Checkerboard score (the 2- and 4-pixel grid of stride-2 upsampling) of the "
                                   "images in each folder, at their own size: the median and the 90th percentile "
                                   "over its images. Real photos and paintings score about 0.1.")
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="a folder of images (PNG, JPEG, ...)")
    p.add_argument("--limit", type=positive_int, help="score at most the first N images of each folder")
    p.add_argument("--model", help="score this model's translations of the images instead (a model or run "
                   "folder, e.g. pretrained/monet2photo_256; each image at its own size, as translate.py)")
    p.add_argument("--direction", choices=DIRECTIONS, help=f"with --model: {DIRECTION_HELP}")
    p.add_argument("--json-out", metavar="FILE", help="also write the figures, each with this command, into "
                   "FILE (a JSON file this command wrote before keeps its other figures)")
    args = p.parse_args(argv)
    from utils.images import list_images
    if (args.model is None) != (args.direction is None):
        p.error("--model and --direction go together: give both or neither")
    if args.model is not None and not (Path(args.model) / layout.CONFIG).is_file():
        p.error(f"--model {args.model}: not a model or run folder (no config.json), e.g. pretrained/monet2photo_256")
    for folder in args.folders:    # every argument is checked before the first image is scored
        if not Path(folder).is_dir():
            p.error(f"{folder} is not a folder: give a folder of images")
        if not list_images(folder):
            p.error(f"{folder} has no image files (PNG, JPEG, ...): give a folder of images")
    figures = _read_record(args.json_out) if args.json_out else {}
    transform = None
    if args.model is not None:
        from utils.runtime.onednn import prefer_onednn
        from utils.cli import quiet
        prefer_onednn("translation")   # TensorFlow's fastest CPU kernels for translating (utils/runtime/onednn.py)
        quiet()
        from utils.inference.trained_model import load_generators
        from utils.inference.translation import translate_image
        model = load_generators(args.model)

        def transform(image):
            return translate_image(model, image, args.direction)

    command = "python -m utils.evaluation.checkerboard " + shlex.join(sys.argv[1:] if argv is None else argv)
    for folder in args.folders:
        s = summary(folder_scores(folder, args.limit, transform=transform))
        name = folder if args.model is None else f"{folder} translated {args.direction} by {args.model}"
        print(f"{name}: checkerboard median {s['median']:.3f}, p90 {s['p90']:.3f} ({s['n']} images)", flush=True)
        if args.json_out:
            figures[name] = {**s, "command": command}
            write_json(args.json_out, {"about": ABOUT, "figures": figures})   # after each folder: kept if stopped


ABOUT = ("Checkerboard score (utils/evaluation/checkerboard.py): per image, the 0.9 quantile over its 64 px tiles of "
         "log10 of the power at the frequencies of a 2- and 4-pixel grid over the power around them; "
         "median and 90th percentile over the images (about 0.1 for real photos and paintings).")


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
