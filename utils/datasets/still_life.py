"""Scene renderers for the synthetic datasets (utils/datasets/synthetic.py): numpy only, no per-pixel loops.

Each renderer takes a numpy Generator and an image size and draws ONE scene in both domains:

    still_life(rng, size) -> {"A": apples, "B": oranges, "mask": fruit}    (synthetic_apple2orange)
    landscape(rng, size)  -> {"A": photo, "B": painting, "mask": all}     (synthetic_photo2painting)

All random choices are drawn first, then both domains are drawn from them, so A and B show the same
scene. In the still life only the fruit differs: the background (wall, table, cloth pattern,
clutter, shadows) is computed once and the fruit is composited over it, so A and B are equal
outside the fruit mask up to the anti-aliased edge. Shapes are drawn with the primitives of
utils/datasets/drawing.py (signed distances turned into anti-aliased coverage); images are float
(h, w, 3) in [0, 1] until `unit_to_uint8`; masks are uint8 0 / 255.
"""

import numpy as np

from models.directions import DOMAINS
from utils.datasets.drawing import box_distance, coverage, ellipse_distance, grid, hsv, over, \
    segment_distance, smooth_noise, unit_to_uint8


# ----------------------------------------------------------------------------- still life
def _still_life_params(rng, size):
    """Every random choice of one still-life scene (both domains use the same)."""
    horizon = size * rng.uniform(0.3, 0.55)
    table_hue = rng.uniform(0, 40) if rng.random() < 0.35 else rng.uniform(0, 360)  # some reddish / orange
    params = {
        "horizon": horizon,
        "wall": hsv(rng.uniform(0, 360), rng.uniform(0.05, 0.35), rng.uniform(0.5, 0.92)),
        "table": hsv(table_hue, rng.uniform(0.15, 0.65), rng.uniform(0.35, 0.85)),
        "table2": hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.5), rng.uniform(0.4, 0.95)),
        "pattern": rng.choice(["plain", "plain", "stripes", "checks"]),
        "pattern_period": size / rng.uniform(5, 12), "pattern_angle": rng.uniform(0, np.pi),
        "light": np.array([rng.uniform(-0.75, -0.2), rng.uniform(-0.8, -0.4), 1.0]),
        "wall_noise": smooth_noise(rng, size, 4), "table_noise": smooth_noise(rng, size, 6),
        "peel_noise": rng.standard_normal((size, size)),
        "clutter": [], "fruits": [],
    }
    params["light"] /= np.linalg.norm(params["light"])
    for _ in range(rng.integers(0, 4)):
        kind = rng.choice(["box", "frame", "plate", "cup"])
        width, height = size * rng.uniform(0.1, 0.35), size * rng.uniform(0.08, 0.3)
        cx = rng.uniform(0, size)
        cy = horizon - height * rng.uniform(0.2, 0.8) if kind in ("box", "frame", "cup") else \
            rng.uniform(horizon, size)
        if kind == "frame":
            cy = rng.uniform(0.1, 0.8) * horizon
        colour = hsv(rng.uniform(0, 360), rng.uniform(0.1, 0.7), rng.uniform(0.3, 0.95))
        params["clutter"].append((kind, cy, cx, height / 2, width / 2, colour))
    for _ in range(rng.integers(1, 4)):
        radius = size * rng.uniform(0.11, 0.2)
        params["fruits"].append({
            "cy": rng.uniform(horizon + 0.1 * radius, size - 0.9 * radius),
            "cx": rng.uniform(radius, size - radius), "r": radius,
            # apple (domain A)
            "apple_red": hsv(rng.uniform(-12, 3), rng.uniform(0.72, 0.92), rng.uniform(0.55, 0.8)),
            "apple_green": hsv(rng.uniform(65, 90), rng.uniform(0.55, 0.8), rng.uniform(0.65, 0.85)),
            "green_share": rng.uniform(0.3, 0.8) if rng.random() < 0.35 else 0.0,
            "green_angle": rng.uniform(0, 2 * np.pi), "streak_phase": rng.uniform(0, 2 * np.pi),
            "dip": rng.uniform(0.08, 0.16), "stem_tilt": rng.uniform(-0.25, 0.25),
            "leaf_angle": rng.uniform(-2.6, -0.5), "leaf": rng.random() < 0.75,
            # orange (domain B)
            "orange": hsv(rng.uniform(26, 36), rng.uniform(0.85, 0.97), rng.uniform(0.88, 1.0)),
            "aspect": rng.uniform(0.93, 1.05), "navel": rng.uniform(-0.35, 0.35, size=2),
        })
    params["fruits"].sort(key=lambda fruit: fruit["cy"])  # back to front
    return params


def _still_life_background(p, y, x, size):
    horizon = p["horizon"]
    wall = p["wall"] * (0.8 + 0.2 * (y / horizon)[..., None]) * (1 + 0.05 * p["wall_noise"][..., None])
    depth = np.clip((y - horizon) / (size - horizon), 0, 1)[..., None]
    table = p["table"] * (0.8 + 0.3 * depth) * (1 + 0.06 * p["table_noise"][..., None])
    if p["pattern"] != "plain":
        along = (x * np.cos(p["pattern_angle"]) + y * np.sin(p["pattern_angle"])) / p["pattern_period"]
        stripes = np.sin(2 * np.pi * along)
        if p["pattern"] == "checks":
            across = (-x * np.sin(p["pattern_angle"]) + y * np.cos(p["pattern_angle"])) / p["pattern_period"]
            stripes = stripes * np.sin(2 * np.pi * across)
        share = np.clip(stripes * 3 + 0.5, 0, 1)[..., None]  # soft-edged stripes
        table = table * (1 - share) + p["table2"] * (0.8 + 0.3 * depth) * share
    image = np.where((y < horizon)[..., None], wall, table)
    image = over(image, p["wall"] * 0.55, coverage(np.abs(y - horizon) - 0.6))  # table edge line
    for kind, cy, cx, ry, rx, colour in p["clutter"]:
        if kind in ("box", "frame"):
            distance = box_distance(y, x, cy - ry, cx - rx, cy + ry, cx + rx)
            shade = colour * (0.85 + 0.15 * (x - cx) / rx)[..., None]
            image = over(image, shade, coverage(distance))
            if kind == "frame":  # a picture: a darker inner panel
                inner = box_distance(y, x, cy - 0.7 * ry, cx - 0.7 * rx, cy + 0.7 * ry, cx + 0.7 * rx)
                image = over(image, colour * 0.5 + 0.25, coverage(inner))
        elif kind == "plate":
            image = over(image, np.array([0.9, 0.9, 0.88]), coverage(ellipse_distance(y, x, cy, cx, ry * 0.35, rx)))
        else:  # cup: body and a rim
            image = over(image, colour, coverage(box_distance(y, x, cy - ry, cx - rx * 0.5, cy + ry, cx + rx * 0.5)))
            image = over(image, colour * 0.7, coverage(ellipse_distance(y, x, cy - ry, cx, ry * 0.15, rx * 0.5)))
    for fruit in p["fruits"]:  # soft contact shadows, the same in both domains
        r, light = fruit["r"], p["light"]
        distance = np.hypot((x - fruit["cx"] + light[0] * 0.5 * r) / (1.1 * r), (y - fruit["cy"] - 0.85 * r) / (0.35 * r))
        image = image * (1 - 0.45 * np.clip(1.2 - distance, 0, 1) ** 1.5)[..., None]
    return image


def _sphere_shading(u, v, light, shininess, strength, bumps=0.0):
    """Lambert + Blinn-Phong on a unit sphere at local coordinates (u, v); returns (diffuse, specular)."""
    nz = np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
    diffuse = np.clip(u * light[0] + v * light[1] + nz * light[2], 0, 1)
    half = light + np.array([0, 0, 1.0])
    half /= np.linalg.norm(half)
    specular = np.clip(u * half[0] + v * half[1] + nz * half[2], 0, 1) ** shininess * strength
    return 0.35 + 0.75 * diffuse, specular * (1 + bumps)


def _apple(fruit, y, x, light):
    """(colour (h, w, 3), coverage (h, w)) of an apple: red or green-red, stem dip, stem, leaf."""
    r = fruit["r"]
    u, v = (x - fruit["cx"]) / r, (y - fruit["cy"]) / r
    theta = np.arctan2(v, u)
    top = np.angle(np.exp(1j * (theta + np.pi / 2)))  # angle from straight up
    bottom = np.angle(np.exp(1j * (theta - np.pi / 2)))
    edge = 1 + 0.05 * np.clip(-v, 0, 1) - fruit["dip"] * np.exp(-(top / 0.35) ** 2) - 0.04 * np.exp(-(bottom / 0.4) ** 2)
    body = coverage((np.hypot(u, v) - edge) * r)
    green = np.clip((u * np.cos(fruit["green_angle"]) + v * np.sin(fruit["green_angle"]) + 1) / 2, 0, 1)
    green = np.clip((green - (1 - fruit["green_share"])) * 3, 0, 1)[..., None] if fruit["green_share"] else 0.0
    skin = fruit["apple_red"] * (1 - green) + fruit["apple_green"] * green
    streaks = 1 + 0.08 * np.sin(u / np.sqrt(np.clip(1 - v * v, 0.05, 1)) * 9 + fruit["streak_phase"])
    diffuse, specular = _sphere_shading(u / 1.05, v / 1.05, light, 45, 0.75)
    colour = skin * (diffuse * streaks)[..., None] + specular[..., None]
    stem_base = (fruit["cy"] - r * (1 - fruit["dip"]) * 0.97, fruit["cx"])
    stem_tip = (fruit["cy"] - 1.32 * r, fruit["cx"] + fruit["stem_tilt"] * r)
    stem = coverage(segment_distance(y, x, stem_base, stem_tip, max(0.05 * r, 0.6)))
    colour = over(colour, np.array([0.35, 0.22, 0.1]), stem)
    alpha = np.maximum(body, stem)
    if fruit["leaf"]:
        angle = fruit["leaf_angle"]
        centre = (stem_tip[0] + 0.5 * r * np.sin(angle) * 0.6, stem_tip[1] + 0.5 * r * np.cos(angle) * 0.6)
        leaf = coverage(ellipse_distance(y, x, centre[0], centre[1], 0.13 * r, 0.34 * r, angle))
        leaf_colour = np.array([0.2, 0.55, 0.15]) * (0.8 + 0.3 * np.clip(-v, 0, 1.5))[..., None]
        colour, alpha = over(colour, leaf_colour, leaf), np.maximum(alpha, leaf)
    return colour, alpha


def _orange(fruit, y, x, light, peel_noise):
    """(colour, coverage) of an orange: orange hue, dimpled peel, navel, softer highlight."""
    r = fruit["r"]
    u, v = (x - fruit["cx"]) / r, (y - fruit["cy"]) / (r * fruit["aspect"])
    body = coverage((np.hypot(u, v) - 1) * r * min(1.0, fruit["aspect"]))
    diffuse, specular = _sphere_shading(u, v, light, 14, 0.25, bumps=np.clip(0.7 * peel_noise, -1, 1))
    colour = fruit["orange"] * (diffuse * (1 + 0.035 * peel_noise))[..., None] + specular[..., None]
    navel = coverage((np.hypot(u - fruit["navel"][0], v - fruit["navel"][1]) - 0.07) * r)
    colour = over(colour, fruit["orange"] * 0.45, navel * 0.8)
    return colour, body


def _fruit_box(fruit, size):
    """Slices of the region a fruit can touch: body (1.05 r), stem and leaf (up to 2 r above)."""
    r, cy, cx = fruit["r"], fruit["cy"], fruit["cx"]
    top, bottom = max(0, int(cy - 2.2 * r) - 2), min(size, int(cy + 1.2 * r) + 3)
    left, right = max(0, int(cx - 1.25 * r) - 2), min(size, int(cx + 1.25 * r) + 3)
    return slice(top, bottom), slice(left, right)


def still_life(rng, size, domains=DOMAINS):
    """One still life drawn as apples (A) and/or oranges (B): {"A", "B", "mask"} uint8 arrays.

    The mask (white = fruit) is the union of both fruits' silhouettes (stem and leaf included, and
    every pixel an anti-aliased edge touches), so A and B are equal wherever the mask is black.
    """
    p = _still_life_params(rng, size)
    y, x = grid(size)
    background = _still_life_background(p, y, x, size)
    peel = p["peel_noise"]
    peel = sum(np.roll(peel, (dy, dx), (0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 3  # dimples ~2 px wide
    out = {domain: background.copy() for domain in domains}
    mask = np.zeros((size, size), bool)
    for fruit in p["fruits"]:
        box = _fruit_box(fruit, size)  # draw only near the fruit: a few times faster
        apple = _apple(fruit, y[box], x[box], p["light"])
        orange = _orange(fruit, y[box], x[box], p["light"], peel[box])
        for domain in domains:
            colour, alpha = apple if domain == "A" else orange
            out[domain][box] = over(out[domain][box], colour, alpha)
        mask[box] |= (apple[1] > 0) | (orange[1] > 0)
    result = {domain: unit_to_uint8(image) for domain, image in out.items()}
    result["mask"] = mask.astype(np.uint8) * 255
    return result
