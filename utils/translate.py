"""Translate images of any size with a trained generator: AtoB uses g_AB, BtoA uses g_BA.

Two ways, both giving back an image of the input's size:
- at its own size (default): reflection-padded to the generator's multiple, translated, cropped
  (utils/full_resolution.py); above `max_side` a scaled-down copy is translated and scaled back.
- `fit=True` (`translate.py --fit`): scaled so its longer side fits the run's img_size, padded by
  reflection to the model's square (nothing stretched, the border looks like the picture),
  translated, cropped back and resized to the original size: the training view, but blurred.
Used by `translate.py`, `serve.py` and the notebooks.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from utils.full_resolution import (DEFAULT_MAX_SIDE, NonFiniteOutputError, run_generator, scaled_size,
                                   translate_at_own_size)
from utils.images import ImageReadError, list_images, read_rgb, to_uint8
from utils.output_files import check_output_folder, output_names, refuse_existing, refuse_inputs, save_png
from utils.trained_model import load_generators


def fit_to_model(image, model_hw):
    """uint8 (h, w, c) -> (float32 (H, W, c) in [-1, 1], box): scaled to fit, reflection-padded.

    box = (top, left, height, width) of the scaled image inside the padded one, for `restore`.
    """
    h, w = image.shape[:2]
    H, W = model_hw
    scale = min(H / h, W / w)
    nh, nw = min(H, max(1, round(h * scale))), min(W, max(1, round(w * scale)))
    resized = np.asarray(Image.fromarray(_pil_shape(image)).resize((nw, nh), Image.BICUBIC))
    resized = resized.reshape(nh, nw, -1)
    top, left = (H - nh) // 2, (W - nw) // 2
    padded = np.pad(resized, ((top, H - nh - top), (left, W - nw - left), (0, 0)), mode="reflect")
    return padded.astype(np.float32) / 127.5 - 1.0, (top, left, nh, nw)


def restore(translated, box, original_hw):
    """Model output (H, W, c) in [-1, 1] -> uint8 (h, w, c) at the original size, the padding cut off."""
    top, left, nh, nw = box
    crop = to_uint8(translated[top:top + nh, left:left + nw])
    h, w = original_hw
    out = np.asarray(Image.fromarray(_pil_shape(crop)).resize((w, h), Image.BICUBIC))
    return out.reshape(h, w, -1)


def _pil_shape(image):
    """(h, w, 1) -> (h, w) for Pillow; (h, w, 3) stays (squeeze() would also drop a height of 1)."""
    return image[..., 0] if image.shape[-1] == 1 else image


def translate_image(model, image, direction="AtoB", fit=False, max_side=DEFAULT_MAX_SIDE):
    """Translate one uint8 image (h, w, 3) of any size; returns uint8 of the same height and width.

    model: TrainedGenerators (utils/trained_model.py), or anything `load_generators` takes (a
        CycleGAN, a run folder: loaded on each call, so load once for many images).
    fit: scale to the training size and back instead of translating at the image's own size.
    max_side: the own-size path's cap on the longer side (None: no cap).
    """
    model = load_generators(model)
    generator = model.generator(direction)
    if model.channels == 1:  # a grayscale model: ITU-R 601 luma, as PIL's convert("L")
        image = np.asarray(Image.fromarray(image).convert("L"))[..., None]
    if not fit:
        return translate_at_own_size(generator, image, model.size_multiple, max_side)
    height, width, _ = model.config.input_dim
    x, box = fit_to_model(image, (height, width))
    y = run_generator(generator, x[None])[0]   # (H, W, c) in [-1, 1]
    return restore(y, box, image.shape[:2])


def translate_folder(source, direction, input_dir, output_dir=None, progress=True, fit=False,
                     max_side=DEFAULT_MAX_SIDE, overwrite=False):
    """Translate every image in input_dir and write PNGs of the same names and sizes to output_dir.

    source: a run folder, a checkpoint folder, a model folder (pretrained/...) or a CycleGAN.
    fit, max_side: as `translate_image` (default: each image at its own size, up to max_side). output_dir defaults to
    `<run folder>/translated/<direction>_<input folder name>/`. Files that cannot be read are named
    in a warning and skipped. The output folder may not be the input folder or inside it, each
    input gets its own output name, and existing files are replaced only with overwrite=True
    (utils/output_files.py). Returns (written paths, skipped [(path, reason)]).
    """
    if direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction={direction!r}: must be 'AtoB' (g_AB) or 'BtoA' (g_BA)")
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist")
    if output_dir is None:
        if not isinstance(source, (str, Path)):
            raise ValueError("output_dir is needed when translating with a CycleGAN object")
        base = Path(source)
        if (base / "state.json").is_file():  # a checkpoint folder: write beside the run, not into weights/
            base = base.parent.parent if base.parent.name == "weights" else base.parent
        output_dir = base / "translated" / f"{direction}_{input_dir.name}"
    output_dir = Path(output_dir)
    check_output_folder(input_dir, output_dir)
    paths = list_images(input_dir)
    names = output_names(paths)   # a.png and a.jpg would both become a.png: each gets its own
    refuse_existing([output_dir / name for name in names.values()], overwrite)
    refuse_inputs([output_dir / name for name in names.values()], paths)
    model = load_generators(source)
    output_dir.mkdir(parents=True, exist_ok=True)

    written, skipped = [], []
    for path in tqdm(paths, desc=f"Translating {direction}", unit="img", disable=not progress):
        try:
            image = read_rgb(path)
        except ImageReadError as error:
            skipped.append((path, str(error)))
            tqdm.write(f"skipped {path}: {error}")
            continue
        if not fit and scaled_size(image.shape[:2], max_side) != image.shape[:2]:
            h, w = scaled_size(image.shape[:2], max_side)
            tqdm.write(f"{path.name}: {image.shape[1]}x{image.shape[0]} px is above --max-side {max_side}: "
                       f"translated at {w}x{h} and scaled back up (not tiled: see utils/full_resolution.py)")
        try:
            out = translate_image(model, image, direction, fit=fit, max_side=max_side)
        except (NonFiniteOutputError, MemoryError) as error:   # one image's failure; the rest of the folder goes on
            error = error if str(error) else "out of memory translating it (try a smaller --max-side)"
            skipped.append((path, str(error)))
            tqdm.write(f"skipped {path}: {error}")
            continue
        target = output_dir / names[path]
        save_png(_pil_shape(out), target)
        written.append(target)
    if progress:
        print(f"{len(written)} image(s) translated {direction} into {output_dir}"
              + (f"; {len(skipped)} skipped" if skipped else ""))
    return written, skipped
