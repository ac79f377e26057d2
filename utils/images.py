"""Read any image file as uint8 RGB, list the images of a folder, and convert pixel ranges.

Real datasets are messy: the CycleGAN horse2zebra set holds grayscale JPEGs, downloaded photos come
as palette PNGs, RGBA screenshots, CMYK JPEGs, 16-bit scans or phone pictures stored sideways with
an EXIF orientation tag. `read_rgb` turns all of them into one thing, an (h, w, 3) uint8 RGB array,
and turns every way a file can be broken into one error, `ImageReadError`, that names the file.

`read_rgb` is the project's one reader of image files, with its checks on untrusted files (size, sides
and aspect ratio from the header, before decoding): the data loader, the evaluation's test sets,
translate.py, the page, the GIF of the grids and the contact sheets all read through it, resized by
`resize_rgb` (bicubic unless a caller says otherwise); `read_unit_images` and `load_images` give many
files as one batch in [0, 1].

The generators end in tanh, so the networks see pixels in [-1, 1]: `to_model_range` and `to_uint8`
convert between that range and ordinary [0, 255] bytes.
"""

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Extensions `list_images` accepts, compared in lower case (.JPG, .Jpeg and .PNG count).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# Refuse images with more pixels than this (Pillow's own default limit, 89.5 megapixels): a tiny
# file can declare 100,000 x 100,000 pixels and take 30 GB to decode (a "decompression bomb").
MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
# The pixel count alone lets through an 86 KB PNG of 89,000,000 x 1 pixels, whose scaling takes gigabytes.
# So the header's sides are checked too: no side above MAX_IMAGE_SIDE (a 150-megapixel phone photo is
# about 14,000 px wide) and no more than MAX_ASPECT times longer than wide (a panorama is about 10:1).
MAX_IMAGE_SIDE = 30_000
MAX_ASPECT = 50


EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image file that cannot be read; `path` is the file and `reason` says what is wrong."""

    def __init__(self, path, reason):
        self.path, self.reason = Path(path), reason
        super().__init__(f"cannot read image {self.path}: {reason}")


def read_rgb(path, max_pixels=None, size=None, resample=Image.BICUBIC):
    """Read an image file as an (h, w, 3) uint8 RGB array; with size = (height, width), resized to it
    (`resize_rgb`, bicubic unless `resample` says otherwise).

    Converts every Pillow mode to RGB: L and 1 (gray copied to 3 channels), P (palette, with its
    transparency), RGBA / LA / PA (alpha composited over white), CMYK, and 16-bit gray (I;16, I)
    scaled from [0, 65535] to [0, 255]. The EXIF orientation tag is applied, so a phone photo
    stored sideways comes out upright.

    Raises ImageReadError (a ValueError) naming the file when it is missing, empty, not an image,
    truncated or corrupt, has more than `max_pixels` pixels (default MAX_IMAGE_PIXELS), a side above
    MAX_IMAGE_SIDE or an aspect ratio above MAX_ASPECT: the sizes are read from the header, before decoding.
    """
    image = _open(path, max_pixels, decode=True)
    return image if size is None else resize_rgb(image, size, resample)


def check_header(path, max_pixels=None):
    """Check that `path` is an image file of an allowed size, reading only its header (fast).

    Returns (width, height); raises ImageReadError as `read_rgb` does. Truncated pixel data is
    only found by decoding, i.e. by `read_rgb`.
    """
    return _open(path, max_pixels, decode=False)


def _open(path, max_pixels, decode):
    """The one place an image file is opened (read_rgb, check_header): checks, then the header or the pixels."""
    path = Path(path)
    max_pixels = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if not path.is_file():
        raise ImageReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # We check the pixel count ourselves below, with a clearer message.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size  # from the header: nothing decoded yet
                if width * height > max_pixels:
                    raise ImageReadError(path, f"{width}x{height} = {width * height:,} pixels is more than "
                                               f"the limit of {max_pixels:,} (a decompression bomb?)")
                _check_shape(path, width, height)
                if not decode:
                    return width, height
                image.load()
                if image.getexif().get(EXIF_ORIENTATION, 1) != 1:  # stored rotated or mirrored
                    image = ImageOps.exif_transpose(image)
                return _to_rgb_array(image)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(path, "not an image file Pillow can identify (wrong extension, or corrupt header)") from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(path, f"decompression bomb refused: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error, zlib.error) as error:
        # Pillow reports truncated or corrupt data as OSError ("image file is truncated"), broken
        # PNG chunks as SyntaxError, and odd headers as ValueError / struct errors.
        raise ImageReadError(path, f"truncated or corrupt image data ({type(error).__name__}: {error})") from None


def _check_shape(path, width, height):
    """ImageReadError if a side is above MAX_IMAGE_SIDE or the aspect ratio above MAX_ASPECT."""
    if max(width, height) > MAX_IMAGE_SIDE:
        raise ImageReadError(path, f"{width}x{height}: a side of {max(width, height):,} px is more than the limit "
                                   f"of {MAX_IMAGE_SIDE:,} px; scale it down first")
    if max(width, height) > MAX_ASPECT * max(1, min(width, height)):
        raise ImageReadError(path, f"{width}x{height}: {max(width, height) / max(1, min(width, height)):,.0f} times "
                                   f"longer than wide, more than the limit of {MAX_ASPECT}:1; crop it first")


def _to_rgb_array(image):
    """A loaded PIL image of any mode -> (h, w, 3) uint8 RGB."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit gray (PNG scans, medical images): scale 0..65535 to 0..255.
        gray = np.asarray(image).astype(np.float64) / 257.0
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image, np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), np.float64)
        alpha = rgba[..., 3:] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)  # composite over a white page
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    if mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, np.uint8)


def resize_rgb(array, size, resample=Image.BICUBIC):
    """Resize an (h, w, 3) or (h, w, 1) uint8 array to size = (height, width) with Pillow (bicubic by
    default): the project's one image resizer."""
    height, width = int(size[0]), int(size[1])
    if array.shape[:2] == (height, width):
        return array
    gray = array.ndim == 3 and array.shape[-1] == 1
    resized = np.asarray(Image.fromarray(array[..., 0] if gray else array).resize((width, height), resample))
    return resized[..., None] if gray else resized


def list_images(folder):
    """Sorted paths of the image files directly in `folder` (any extension case, names with spaces).

    Hidden files (".DS_Store", "._x.jpg" from macOS) and sub-folders are skipped.
    Raises FileNotFoundError if the folder does not exist.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def to_model_channels(images, channels):
    """The images as a model with `channels` channels takes them: RGB -> one gray channel by the mean of R, G
    and B, the one conversion of the project (training, its grids, translate.py and the page), so that a
    grayscale model translates the same gray it trained on. uint8 stays uint8 (rounded), floats float32;
    anything else passes through unchanged. images: (..., h, w, 3)."""
    images = np.asarray(images)
    if channels != 1 or images.shape[-1] != 3:
        return images
    gray = images.astype(np.float32).mean(axis=-1, keepdims=True)
    return np.rint(gray).astype(np.uint8) if images.dtype == np.uint8 else gray


def to_model_range(images):
    """uint8 pixels in [0, 255] -> float32 in [-1, 1] (the range of the generators' tanh)."""
    scaled = np.array(images, np.float32)
    scaled *= 1 / 127.5
    scaled -= 1.0
    return scaled


def to_uint8(images):
    """Floats in [-1, 1] -> uint8 in [0, 255], clipped and rounded (for saving and plotting)."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def read_unit_images(paths, size, resample=Image.BICUBIC, dtype=np.float32, skip_unreadable=False):
    """Image files as one (n, h, w, 3) array of `dtype` in [0, 1], each read by `read_rgb` at size = (h, w)
    (whole image resized, bicubic unless `resample` says otherwise: NEAREST keeps a mask's values).

    skip_unreadable: a file that cannot be read is skipped with a warning naming it (else ImageReadError).
    An empty result is (0, h, w, 3).
    """
    images = []
    for path in paths:
        try:
            images.append(read_rgb(path, size=size, resample=resample))
        except ImageReadError as error:
            if not skip_unreadable:
                raise
            warnings.warn(f"skipped: {error}")
    if not images:
        return np.zeros((0, int(size[0]), int(size[1]), 3), dtype)
    return np.stack(images).astype(dtype) / 255.0


def load_images(folder, size, limit=None, seed=0):
    """Images of a folder as (n, size, size, 3) float32 in [0, 1] (whole image resized, bicubic).

    Unreadable files are skipped with a warning naming them; `limit` picks a seeded random subset.
    """
    paths = list_images(folder)
    if limit is not None and len(paths) > limit:
        rng = np.random.default_rng(seed)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
    images = read_unit_images(paths, (size, size), skip_unreadable=True)
    if not len(images):
        raise FileNotFoundError(f"no readable images in {folder}")
    return images
