"""Drawing primitives of the synthetic scenes (utils/datasets/still_life.py, utils/datasets/landscape.py).

numpy only, whole images at a time: a shape is a signed distance in pixels (negative inside) at
every pixel centre of `grid`, turned into an anti-aliased `coverage` in [0, 1] and composited with
`over`. Images are float (h, w, 3) in [0, 1] until `unit_to_uint8`.
"""

import colorsys

import numpy as np
from PIL import Image


def grid(size):
    """Pixel-centre coordinates (y, x), each (size, size), in pixels."""
    return np.mgrid[0:size, 0:size].astype(np.float64) + 0.5


def hsv(hue_degrees, saturation, value):
    """An RGB colour (3,) in [0, 1] from a hue in degrees (any, wrapped) and saturation, value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb((hue_degrees % 360) / 360, saturation, value))


def coverage(distance):
    """Signed distance in pixels (negative inside) -> anti-aliased coverage in [0, 1]."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def over(image, colour, alpha):
    """Composite `colour` ((3,) or (h, w, 3)) over `image` with coverage alpha (h, w)."""
    alpha = alpha[..., None]
    return image * (1 - alpha) + colour * alpha


def smooth_noise(rng, size, cells):
    """Smooth random field (size, size) with about `cells` blobs across, std about 1."""
    cells = max(2, int(cells))
    field = Image.fromarray(rng.standard_normal((cells, cells)).astype(np.float32), mode="F")
    return np.asarray(field.resize((size, size), Image.BICUBIC), np.float64)


def ellipse_distance(y, x, cy, cx, ry, rx, angle=0.0):
    """Approximate signed distance in pixels to a rotated ellipse (exact for circles)."""
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * cos + (y - cy) * sin, -(x - cx) * sin + (y - cy) * cos
    return (np.hypot(u / rx, v / ry) - 1.0) * min(rx, ry)


def box_distance(y, x, top, left, bottom, right):
    """Signed distance in pixels to an axis-aligned rectangle."""
    dy = np.maximum(top - y, y - bottom)
    dx = np.maximum(left - x, x - right)
    outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
    return outside + np.minimum(np.maximum(dx, dy), 0)


def segment_distance(y, x, p0, p1, half_width):
    """Signed distance to a capsule from p0 to p1 (points (y, x)) of the given half width."""
    (y0, x0), (y1, x1) = p0, p1
    length2 = (y1 - y0) ** 2 + (x1 - x0) ** 2
    t = np.clip(((y - y0) * (y1 - y0) + (x - x0) * (x1 - x0)) / length2, 0, 1)
    return np.hypot(y - (y0 + t * (y1 - y0)), x - (x0 + t * (x1 - x0))) - half_width


def unit_to_uint8(image):
    """Floats in [0, 1] -> uint8 in [0, 255], rounded (utils/images.to_uint8 is for [-1, 1])."""
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
