"""Landscape renderer for synthetic_photo2painting: one scene drawn as a photo (A) and a painting (B).

The scene (sky, sun, clouds, hills, water, trees) is drawn once as a smooth float image. The
"photo" adds fine sensor grain; the "painting" (the stand-in for Monet) samples the scene along
brush strokes (so edges become ragged), reduces it to a small palette, and lays a stroke and canvas
texture over it. Every pixel changes between the two, so the mask is white everywhere.
"""

import numpy as np
from PIL import Image

from models.directions import DOMAINS
from utils.datasets.drawing import box_distance, coverage, ellipse_distance, grid, hsv, over, smooth_noise, \
    unit_to_uint8


def _landscape_params(rng, size):
    """Every random choice of one landscape (both renderings use the same)."""
    sky = rng.choice(["day", "day", "dusk", "overcast"])
    if sky == "day":
        top, low = hsv(rng.uniform(200, 225), rng.uniform(0.45, 0.75), rng.uniform(0.7, 0.95)), \
            hsv(rng.uniform(190, 215), rng.uniform(0.1, 0.3), rng.uniform(0.88, 1.0))
    elif sky == "dusk":
        top, low = hsv(rng.uniform(230, 270), rng.uniform(0.35, 0.6), rng.uniform(0.4, 0.65)), \
            hsv(rng.uniform(10, 40), rng.uniform(0.5, 0.8), rng.uniform(0.9, 1.0))
    else:
        top, low = hsv(rng.uniform(200, 230), rng.uniform(0.03, 0.12), rng.uniform(0.55, 0.75)), \
            hsv(rng.uniform(200, 230), rng.uniform(0.02, 0.1), rng.uniform(0.78, 0.92))
    horizon = size * rng.uniform(0.38, 0.6)
    params = {"sky_top": top, "sky_low": low, "horizon": horizon,
              "sun": (rng.uniform(0.05, 0.9) * horizon, rng.uniform(0, size), size * rng.uniform(0.035, 0.07))
              if rng.random() < 0.6 else None,
              "sun_colour": hsv(rng.uniform(35, 55), rng.uniform(0.1, 0.4), 1.0) if sky != "dusk"
              else hsv(rng.uniform(15, 35), rng.uniform(0.5, 0.8), 1.0),
              "clouds": [(rng.uniform(0.05, 0.8) * horizon, rng.uniform(0, size), size * rng.uniform(0.03, 0.07),
                          size * rng.uniform(0.1, 0.25), rng.uniform(0.5, 0.9)) for _ in range(rng.integers(0, 5))],
              "water": size * rng.uniform(0.72, 0.86) if rng.random() < 0.55 else None,
              "hills": [], "trees": [],
              "grain": rng.standard_normal((size, size, 3)),
              "stroke_noise": rng.standard_normal((2, size, size)), "stroke_angle": rng.uniform(-0.5, 0.5),
              "stroke_texture": smooth_noise(rng, size, size / 3), "palette_size": int(rng.integers(10, 18))}
    n_hills = rng.integers(2, 4)
    for k in range(n_hills):
        near = (k + 1) / n_hills  # 0 far .. 1 near
        base = horizon + (size - horizon) * (0.1 + 0.45 * near) - size * 0.1
        waves = [(size * rng.uniform(0.02, 0.09), rng.uniform(0.5, 3) * 2 * np.pi / size, rng.uniform(0, 2 * np.pi))
                 for _ in range(3)]
        colour = hsv(rng.uniform(70, 140) if rng.random() < 0.8 else rng.uniform(25, 45),
                      rng.uniform(0.35, 0.75), rng.uniform(0.3, 0.65))
        colour = colour * near + low * (1 - near) * 0.8 + colour * (1 - near) * 0.2  # aerial perspective
        params["hills"].append((base, waves, colour))
    for _ in range(rng.integers(0, 7) if rng.random() < 0.75 else 0):
        height = size * rng.uniform(0.08, 0.2)
        params["trees"].append((rng.uniform(0, size), height, rng.random() < 0.5,
                                hsv(rng.uniform(90, 150), rng.uniform(0.4, 0.8), rng.uniform(0.15, 0.4))))
    return params


def _hill_top(hill, x):
    base, waves, _ = hill
    return base - sum(amplitude * np.sin(frequency * x + phase) for amplitude, frequency, phase in waves)


def _landscape_scene(p, y, x, size):
    """The clean scene, float (size, size, 3) in [0, 1]."""
    t = np.clip(y / p["horizon"], 0, 1)[..., None]
    image = p["sky_top"] * (1 - t) + p["sky_low"] * t
    if p["sun"] is not None:
        sy, sx, radius = p["sun"]
        distance = np.hypot(y - sy, x - sx)
        image = image + 0.35 * np.exp(-(distance / (3 * radius)) ** 2)[..., None] * p["sun_colour"]
        image = over(image, p["sun_colour"], coverage(distance - radius))
    for cy, cx, ry, rx, brightness in p["clouds"]:
        soft = np.clip(1 - np.hypot((y - cy) / ry, (x - cx) / rx), 0, 1) ** 0.7
        image = over(image, np.full(3, brightness), soft * 0.9)
    for hill in p["hills"]:
        top = _hill_top(hill, x)
        shade = (0.85 + 0.3 * np.clip((y - top) / (0.3 * size), 0, 1))[..., None]
        image = over(image, hill[2] * shade, coverage(top - y))
    near_hill = p["hills"][-1]
    for tx, height, conifer, colour in p["trees"]:
        ground = _hill_top(near_hill, np.array(tx)) + 0.02 * size
        trunk = box_distance(y, x, ground - 0.4 * height, tx - 0.03 * height, ground, tx + 0.03 * height)
        image = over(image, np.array([0.3, 0.2, 0.12]), coverage(trunk))
        if conifer:  # a triangle: inside when below both sloping sides and above the base
            slope = np.maximum(np.abs(x - tx) * 3.0 - (y - (ground - height)), (y - (ground - 0.3 * height)))
            crown = coverage(slope / 3.2)
        else:
            crown = coverage(ellipse_distance(y, x, ground - 0.65 * height, tx, 0.38 * height, 0.3 * height))
        image = over(image, colour * (0.9 + 0.25 * ((tx - x) / height))[..., None], crown)
    if p["water"] is not None:
        level = p["water"]
        depth = np.clip((y - level) / (size - level + 1e-6), 0, 1)[..., None]
        water = (p["sky_low"] * 0.6 + np.array([0.05, 0.2, 0.35])) * (1 - 0.35 * depth)
        water = water * (1 + 0.06 * np.sin(y * 1.7 + 2 * np.sin(x * 0.15)))[..., None]  # ripples
        image = over(image, water, coverage(level - y))
    return np.clip(image, 0, 1)


def _paint(scene, p, y, x, size):
    """The painting: strokes displace and smear the scene, a small palette, stroke and canvas texture."""
    angle = p["stroke_angle"]
    direction = np.array([np.sin(angle), np.cos(angle)])  # (dy, dx) of the strokes: mostly horizontal
    length = max(2, size // 24)
    # Brush strokes: noise blobs about 3 px wide, smeared along the stroke direction.
    strokes = []
    for noise in p["stroke_noise"]:
        blob = sum(np.roll(noise, (dy, dx), (0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        smear = sum(np.roll(blob, (round(step * direction[0]), round(step * direction[1])), (0, 1))
                    for step in range(-length, length + 1))
        strokes.append(smear / smear.std())
    shift = max(0.8, size / 96)  # pixels the paint is pushed along, so edges turn ragged
    sample_y = np.clip(np.rint(y - 0.5 + shift * strokes[0]), 0, size - 1).astype(int)
    sample_x = np.clip(np.rint(x - 0.5 + shift * strokes[1]), 0, size - 1).astype(int)
    painted = scene[sample_y, sample_x]
    # A small palette, the way a painter mixes a few colours (median cut, no dithering).
    quantised = Image.fromarray(unit_to_uint8(painted)).quantize(p["palette_size"], Image.Quantize.MEDIANCUT,
                                                             dither=Image.Dither.NONE)
    painted = np.asarray(quantised.convert("RGB"), np.float64) / 255
    saturated = painted.mean(axis=-1, keepdims=True) + 1.25 * (painted - painted.mean(axis=-1, keepdims=True))
    texture = 0.08 * np.tanh(strokes[0]) + 0.025 * p["stroke_texture"]
    canvas = 0.025 * np.sin(x * 2.1) * np.sin(y * 2.1)  # the weave of the canvas
    return np.clip(saturated * (1 + texture + canvas)[..., None] + 0.02, 0, 1)


def landscape(rng, size, domains=DOMAINS):
    """One landscape as a photo (A) and/or a painting (B): {"A", "B", "mask"} uint8 arrays.

    The mask is white everywhere: the style changes every pixel.
    """
    p = _landscape_params(rng, size)
    y, x = grid(size)
    scene = _landscape_scene(p, y, x, size)
    out = {}
    if "A" in domains:
        out["A"] = unit_to_uint8(scene + 0.018 * p["grain"])  # fine sensor grain
    if "B" in domains:
        out["B"] = unit_to_uint8(_paint(scene, p, y, x, size))
    out["mask"] = np.full((size, size), 255, np.uint8)
    return out
