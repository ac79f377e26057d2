"""Translate images of any size with a trained generator (AtoB: g_AB, BtoA: g_BA), and write them safely.

Both generators are fully convolutional (convolutions, instance norm and pointwise layers only), so a
network trained on 128 px images runs on a 1024 px photo as it is; the official code does the same
with `--preprocess none`. One path serves both ways of `translate_image`, each giving back an image
of the input's height and width:

    resize (to the working size) -> reflection-pad (to the padded size) -> generator -> crop -> resize back

- at its own size (default): working size = the photo's, or scaled down so its longer side is
  `max_side`; padded to the next multiple of the generator's `size_multiple` (U-Net 16, ResNet 4:
  models/config.py). Not tiled: instance normalisation takes each tile's own mean and variance, so
  tiles would come out in visibly different tones with seams between them.
- `fit=True` (`translate.py --fit`): scaled so it fits the model's training size, padded to that
  square: the training view, but every detail finer than the model's pixels is lost.

The padding mirrors the border, as the networks pad inside, so the border looks like the picture and
not like a black frame. Memory grows with the pixel count (benchmarks/bench_full_resolution.py).

Where translated images go (`translate_folder`): never over the originals, never over a file unless
asked, one per input, checked before the first image is written:
1. the output folder is neither the input folder nor inside it (`check_output_folder`);
2. every input gets its own output name, also on case-insensitive disks (`output_names`);
3. an existing file is only replaced with overwrite=True (`--overwrite`) (`refuse_existing`);
4. no output is an input under another name: a target that is a symbolic link to an input file is
   refused (`refuse_inputs`), and each file is written beside its target and renamed over it
   (`save_png`), so a link at the target is replaced, never written through;
5. the output folder is opened once (models/files.OpenFolder, a directory descriptor) and checked by
   identity, not by path, to be neither the input folder nor inside it; every file is written relative
   to that descriptor, so an --output link re-pointed at the input folder mid-run writes nothing there.
Used by `translate.py`, `serve.py` and the notebooks.
"""

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from models.directions import check_direction
from utils.runtime.files import OpenFolder, write_atomic
from models.generators import run_generator
from utils.runtime.onednn import translation_side_limit
from utils.cli import wants_bar
from utils.images import (ImageReadError, list_images, read_rgb, resize_rgb, to_model_channels, to_model_range,
                          to_uint8)
from utils.inference.trained_model import load_generators
from utils.training import run_folder as layout

_warned_side = []    # the cap's note is printed once a process
MIN_SIDE = 32        # smaller images are padded up to this (the U-Net's 16x downsampling leaves 2 x 2)
DEFAULT_MAX_SIDE = 1024


class NonFiniteOutputError(ValueError):
    """The generator returned NaN or inf: saved as a PNG it would be a black image, so nothing is saved."""


def scaled_size(hw, max_side):
    """(h, w) scaled so the longer side is at most max_side (None or 0: no limit); unchanged if it fits."""
    h, w = hw
    if not max_side or max(h, w) <= max_side:
        return h, w
    scale = max_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def fitted_size(hw, model_hw):
    """(h, w) scaled (up or down) to fit inside model_hw = (H, W), keeping the aspect ratio."""
    (h, w), (H, W) = hw, model_hw
    scale = min(H / h, W / w)
    return min(H, max(1, round(h * scale))), min(W, max(1, round(w * scale)))


def padded_size(hw, multiple, min_side=MIN_SIDE):
    """The smallest (H, W) >= hw (and >= min_side) whose sides are multiples of `multiple`."""
    return tuple(max(-(-side // multiple) * multiple, -(-min_side // multiple) * multiple) for side in hw)


def pad_to_size(image, size):
    """(h, w, c) array -> (padded (H, W, c), box): reflection-padded to size = (H, W), padding split evenly.

    box = (top, left, h, w) of the image inside the padded one.
    """
    (h, w), (H, W) = image.shape[:2], size
    top, left = (H - h) // 2, (W - w) // 2
    pads = ((top, H - h - top), (left, W - w - left), (0, 0))
    # numpy reflects again and again when a pad is longer than the image; a 1-pixel side is repeated.
    mode = "reflect" if min(h, w) > 1 else "edge"
    return np.pad(image, pads, mode=mode), (top, left, h, w)


def pad_to_multiple(image, multiple, min_side=MIN_SIDE):
    """`pad_to_size` to the next multiple of `multiple` (at least min_side): (padded, box)."""
    return pad_to_size(image, padded_size(image.shape[:2], multiple, min_side))


def generate_checked(generator, x):
    """`run_generator` (models/generators.py), raising NonFiniteOutputError on NaN or inf (to_uint8 would
    turn it into black)."""
    y = run_generator(generator, x)
    if not np.all(np.isfinite(y)):
        raise NonFiniteOutputError(f"{generator.name} returned NaN or inf for this image (its weights or the "
                                   "image are not sane): nothing written")
    return y


def translate_padded(generator, image, work_hw, padded_hw):
    """The one translation path: uint8 (h, w, c) resized to work_hw, padded to padded_hw, translated,
    cropped back and resized to (h, w); returns uint8 (h, w, c)."""
    x, (top, left, h, w) = pad_to_size(resize_rgb(image, work_hw), padded_hw)
    y = generate_checked(generator, to_model_range(x)[None])[0]   # (H, W, c) in [-1, 1]
    return resize_rgb(to_uint8(y[top:top + h, left:left + w]), image.shape[:2])


def translate_at_own_size(generator, image, multiple, max_side=DEFAULT_MAX_SIDE):
    """Translate one uint8 image (h, w, c) at its own size (above max_side: a scaled-down copy, scaled back).

    generator: a (None, None, c) Keras model (utils/inference/trained_model.py), multiple: its size multiple.
    In a process whose CPU kernels were chosen for training on a CPU without AVX-512 (a notebook), the side
    is capped at models/onednn.SAFE_SIDE, where those kernels would crawl (utils/runtime/onednn.py).
    """
    max_side = _safe_max_side(max_side, image.shape[:2])
    work_hw = scaled_size(image.shape[:2], max_side)
    return translate_padded(generator, image, work_hw, padded_size(work_hw, multiple))


def _safe_max_side(max_side, hw):
    limit = translation_side_limit()
    if limit is None or (max_side and max_side <= limit) or max(hw) <= limit:
        return max_side
    if not _warned_side:
        _warned_side.append(limit)
        print(f"note: this process runs TensorFlow's oneDNN kernels (chosen for training) on a CPU without AVX-512, "
              f"which crawl on large images: photos are translated at most {limit} px a side here and scaled back "
              "(translate.py chooses the kernels for translating: utils/runtime/onednn.py)", flush=True)
    return limit


def translate_image(model, image, direction="AtoB", fit=False, max_side=DEFAULT_MAX_SIDE):
    """Translate one uint8 image (h, w, 3) of any size; returns uint8 of the same height and width.

    model: TrainedGenerators (utils/inference/trained_model.py), or anything `load_generators` takes (a
        CycleGAN, a run folder: loaded on each call, so load once for many images).
    fit: scale to the training size and back instead of translating at the image's own size.
    max_side: the own-size path's cap on the longer side (None: no cap).
    """
    model = load_generators(model)
    generator = model.generator(direction)
    image = to_model_channels(image, model.channels)   # a grayscale model: the gray it trained on
    if not fit:
        return translate_at_own_size(generator, image, model.size_multiple, max_side)
    model_hw = tuple(model.config.input_dim[:2])
    return translate_padded(generator, image, fitted_size(image.shape[:2], model_hw), model_hw)


def translate_folder(source, direction, input_dir, output_dir=None, progress=True, fit=False,
                     max_side=DEFAULT_MAX_SIDE, overwrite=False, limit=None):
    """Translate every image in input_dir and write PNGs of the same names and sizes to output_dir.

    source: a run folder, a checkpoint folder, a model folder (pretrained/...) or a CycleGAN.
    fit, max_side: as `translate_image` (default: each image at its own size, up to max_side). output_dir defaults to
    `<run folder>/translated/<direction>_<input folder name>/`. Files that cannot be read are named
    in a warning and skipped. The output folder may not be the input folder or inside it, each
    input gets its own output name, and existing files are replaced only with overwrite=True
    (this module's docstring). limit: only the first `limit` images (sorted by name), e.g. the handful a
    notebook shows. progress: a bar and a closing line (True), neither (False), or 'auto': the bar only on a
    terminal or in a notebook (utils.cli.wants_bar). Returns (written paths, skipped [(path, reason)]).
    """
    check_direction(direction)
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder {input_dir} does not exist")
    if output_dir is None:
        if not isinstance(source, (str, Path)):
            raise ValueError("output_dir is needed when translating with a CycleGAN object")
        # a checkpoint folder or weights/: beside the run, not into weights/
        output_dir = layout.run_folder_of(source) / layout.TRANSLATED / f"{direction}_{input_dir.name}"
    output_dir = Path(output_dir)
    check_output_folder(input_dir, output_dir)
    paths = list_images(input_dir)[:limit]
    names = output_names(paths)   # a.png and a.jpg would both become a.png: each gets its own
    refuse_existing([output_dir / name for name in names.values()], overwrite)
    refuse_inputs([output_dir / name for name in names.values()], paths)
    model = load_generators(source)
    output_dir.mkdir(parents=True, exist_ok=True)
    with OpenFolder(output_dir) as folder:   # from here on the folder itself, whatever its path names later
        check_opened_folder(input_dir, folder)
        written, skipped = _translate_into(folder, model, paths, names, direction, fit, max_side, overwrite, progress)
    if progress:
        print(f"{len(written)} image(s) translated {direction} into {output_dir}"
              + (f"; {len(skipped)} skipped" if skipped else ""))
    return written, skipped


def _translate_into(folder, model, paths, names, direction, fit, max_side, overwrite, progress):
    """translate_folder's loop: each image read, translated and written into the open `folder`."""
    output_dir = folder.path
    written, skipped = [], []
    for path in tqdm(paths, desc=f"Translating {direction}", unit="img", disable=not wants_bar(progress)):
        try:
            image = read_rgb(path)
        except ImageReadError as error:
            skipped.append((path, str(error)))
            tqdm.write(f"skipped {path}: {error}")
            continue
        if not fit and scaled_size(image.shape[:2], max_side) != image.shape[:2]:
            h, w = scaled_size(image.shape[:2], max_side)
            tqdm.write(f"{path.name}: {image.shape[1]}x{image.shape[0]} px is above --max-side {max_side}: "
                       f"translated at {w}x{h} and scaled back up (not tiled: see utils/inference/translation.py)")
        try:
            out = translate_image(model, image, direction, fit=fit, max_side=max_side)
        except (NonFiniteOutputError, MemoryError) as error:   # one image's failure; the rest of the folder goes on
            error = error if str(error) else "out of memory translating it (try a smaller --max-side)"
            skipped.append((path, str(error)))
            tqdm.write(f"skipped {path}: {error}")
            continue
        target = output_dir / names[path]
        save_png(out[..., 0] if out.shape[-1] == 1 else out, target, folder=folder, overwrite=overwrite)
        written.append(target)
    return written, skipped


def check_output_folder(input_dir, output_dir):
    """ValueError if output_dir is input_dir or inside it (the translations would mix with the originals)."""
    source, target = Path(input_dir).resolve(), Path(output_dir).resolve()
    if target == source or source in target.parents:
        where = "the input folder" if target == source else f"inside the input folder {input_dir}"
        raise ValueError(f"output folder {output_dir} is {where}: the translations would replace or mix with "
                         "the originals. Choose an --output outside it")


def check_opened_folder(input_dir, folder):
    """ValueError if the open output `folder` (models/files.OpenFolder) is the input folder or inside it,
    compared by identity (device and inode), so that no link or rename can pass it off as another folder."""
    source = os.stat(input_dir)
    if (source.st_dev, source.st_ino) in folder.identities():
        raise ValueError(f"output folder {folder.path} is (or is inside) the input folder {input_dir}: the "
                         "translations would replace or mix with the originals. Choose an --output outside it")


def output_names(paths, suffix=".png"):
    """{input path: output file name}, all distinct: 'a.jpg' -> 'a.png', then 'a.png' -> 'a_png.png',
    then 'a_2.png'... Compared case-blind, as on macOS and Windows disks."""
    names, taken = {}, set()
    for path in paths:
        stem = path.stem
        candidates = [stem, f"{stem}_{path.suffix.lstrip('.')}"]
        name = next((c for c in candidates if c.casefold() not in taken), None)
        counter = 2
        while name is None:
            if f"{stem}_{counter}".casefold() not in taken:
                name = f"{stem}_{counter}"
            counter += 1
        taken.add(name.casefold())
        names[path] = name + suffix
    return names


def refuse_existing(targets, overwrite=False):
    """FileExistsError naming the files of `targets` that exist already, unless overwrite."""
    existing = [t for t in targets if Path(t).exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}{more} exist already: pass --overwrite (overwrite=True) to replace "
                              "them, or choose another --output")


def refuse_inputs(targets, inputs):
    """ValueError naming the first of `targets` that resolves (through links) to one of `inputs`."""
    originals = {Path(p).resolve(): p for p in inputs}
    for target in targets:
        if Path(target).resolve() in originals:
            raise ValueError(f"output file {target} is a link to the input {originals[Path(target).resolve()]}: "
                             "writing it would replace the original. Remove the link or choose another --output")


def save_png(image, target, folder=None, overwrite=True):
    """Write uint8 (h, w) or (h, w, 3) `image` as the PNG `target`: encoded in memory, then written to a
    temporary file beside it and renamed over it (models/files.write_atomic). folder: an open
    models/files.OpenFolder to write `target`'s name into (not its path); overwrite=False then refuses a
    file that appeared since the checks."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    if folder is not None:
        return folder.write(Path(target).name, buffer.getvalue(), overwrite=overwrite)
    return write_atomic(target, buffer.getvalue())
