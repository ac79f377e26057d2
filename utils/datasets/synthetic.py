"""Built-in synthetic datasets: train with no download, and MEASURE a translation on paired tests.

    python -m utils.datasets.synthetic synthetic_apple2orange [--size 128 --n-train 300 --n-test 24 --seed 0]
    python -m utils.datasets.synthetic contact-sheet synthetic_apple2orange -o sheet.png

Two datasets, written as ordinary image folders so the DataLoader and the notebooks read them
like a downloaded one:

    synthetic_apple2orange     still lifes; A: apples (red / green-red, stem, leaf),
                               B: oranges (orange, dimpled peel, navel); same backgrounds
    synthetic_photo2painting   landscapes; A: "photo" (smooth, fine grain),
                               B: "painting" (small palette, brush strokes) - a stand-in for monet2photo

    data/<name>/trainA/  trainB/   unpaired: different scenes in A and B, as in real CycleGAN data
    data/<name>/testA/   testB/    PAIRED: testA/scene_0003.png and testB/scene_0003.png are the same
    data/<name>/testMask/          scene in the two domains; testMask/scene_0003.png is white where
                                   they differ (the fruit; all of it for the painting)
    data/<name>/info.json          name, size, counts, seed, generator version

Every image is deterministic from (seed, split, index): the same arguments give the same bytes.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from utils.cli import ArgumentParser, non_negative_int, positive_int
from utils.datasets.landscape import landscape
from utils.datasets.still_life import still_life
from utils.images import check_header, read_rgb

SYNTHETIC_DATASETS = ("synthetic_apple2orange", "synthetic_photo2painting")
GENERATOR_VERSION = 2  # bump when the pictures change, so ensure_dataset regenerates old copies
DEFAULTS = {"size": 128, "n_train": 300, "n_test": 24, "seed": 0}
MAX_IMAGE_SIZE = 4096   # the largest side models/config.py accepts
_RENDERERS = {"synthetic_apple2orange": (still_life, "apple", "orange"),
              "synthetic_photo2painting": (landscape, "photo", "painting")}
_SPLIT_IDS = {"trainA": 0, "trainB": 1, "test": 2}  # separate random streams: train A and B unpaired


def _check_name(name):
    if name not in SYNTHETIC_DATASETS:
        raise ValueError(f"unknown synthetic dataset {name!r}; the synthetic datasets are: "
                         f"{', '.join(SYNTHETIC_DATASETS)} (for the official ones use python -m utils.datasets.download)")


def _save_png(array, path):
    Image.fromarray(array).save(path, compress_level=1)  # fast; PNG output carries no timestamp


def generate_dataset(name, data_root="data", size=DEFAULTS["size"], n_train=DEFAULTS["n_train"],
                     n_test=DEFAULTS["n_test"], seed=DEFAULTS["seed"], force=False):
    """Render dataset `name` into data_root/name; returns that path.

    size: images are size x size pixels; n_train: images in each of trainA and trainB; n_test:
    paired test scenes. Written into a temporary folder and renamed into place when complete.
    Raises FileExistsError if the folder exists and force is False (see `ensure_dataset`).
    """
    _check_name(name)
    if size < 16 or n_train < 1 or n_test < 1:
        raise ValueError(f"need size >= 16, n_train >= 1, n_test >= 1; got {size}, {n_train}, {n_test}")
    data_root = Path(data_root)
    target = data_root / name
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; pass force=True (--force) to replace it, or use ensure_dataset")
    render, name_A, name_B = _RENDERERS[name]
    data_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=data_root, prefix=f".{name}-generating-"))
    try:
        for split in ("trainA", "trainB", "testA", "testB", "testMask"):
            (work / split).mkdir()
        for index in range(n_train):
            for split, domain, label in (("trainA", "A", name_A), ("trainB", "B", name_B)):
                scene = render(np.random.default_rng([seed, _SPLIT_IDS[split], index]), size, domains=(domain,))
                _save_png(scene[domain], work / split / f"{label}_{index:04d}.png")
        for index in range(n_test):
            scene = render(np.random.default_rng([seed, _SPLIT_IDS["test"], index]), size)
            for split, key in (("testA", "A"), ("testB", "B"), ("testMask", "mask")):
                _save_png(scene[key], work / split / f"scene_{index:04d}.png")
        info = {"name": name, "generator_version": GENERATOR_VERSION, "size": size, "n_train": n_train,
                "n_test": n_test, "seed": seed, "domains": {"A": name_A, "B": name_B},
                "test_paired": True, "mask": "testMask: white where testA and testB differ"}
        (work / "info.json").write_text(json.dumps(info, indent=2) + "\n")
        if target.exists():  # force: move the old copy aside, put the new one in, then delete the old
            old = data_root / f".{name}-old-{os.getpid()}"
            os.replace(target, old)
            os.replace(work, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def read_info(folder):
    """The info.json of a generated dataset as a dict, or None if it is missing or unreadable."""
    try:
        return json.loads((Path(folder) / "info.json").read_text())
    except (OSError, ValueError):
        return None


def ensure_dataset(name, data_root="data", **kwargs):
    """Generate dataset `name` unless a complete copy exists; returns data_root/name.

    kwargs are those of `generate_dataset` (size, n_train, n_test, seed, force). A copy is reused
    when its info.json has this generator version, agrees with every setting passed, and all its
    files are there; otherwise it is generated again.
    """
    _check_name(name)
    target = Path(data_root) / name
    info = read_info(target)
    wanted = {key: kwargs[key] for key in DEFAULTS if key in kwargs}
    reuse = (not kwargs.get("force") and info is not None and info.get("generator_version") == GENERATOR_VERSION
             and all(info.get(key) == value for key, value in wanted.items()) and _files_complete(target, info))
    if reuse:
        return target
    kwargs["force"] = True
    return generate_dataset(name, data_root, **kwargs)


def ensure_size(name, data_root="data", size=DEFAULTS["size"]):
    """`ensure_dataset` at `size` px: a copy at another size is generated again at this one, saying so.

    A model trained on a copy of another size would see every picture resized (the 64 px copy that
    `make demo` leaves, blown up to 128 px for notebook 05_01): blurry, and not what was asked for.
    The copy keeps its image counts and seed; only the size changes. Returns data_root/name.
    """
    info = read_info(Path(data_root) / name)
    if info is None:
        return ensure_dataset(name, data_root, size=size)
    kept = {key: info[key] for key in ("n_train", "n_test", "seed") if key in info}
    if info.get("size") != size:
        print(f"note: {Path(data_root) / name} holds {info.get('size')} px images, this model takes {size} px: "
              f"generating it again at {size} px (same {kept.get('n_train')} + {kept.get('n_test')} images, seed "
              f"{kept.get('seed')}; a few seconds). To get the {info.get('size')} px copy back: "
              f"python -m utils.datasets.synthetic {name} --size {info.get('size')}", flush=True)
    return ensure_dataset(name, data_root, size=size, **kept)


def _files_complete(folder, info):
    counts = {"trainA": info["n_train"], "trainB": info["n_train"], "testA": info["n_test"],
              "testB": info["n_test"], "testMask": info["n_test"]}
    return all((folder / split).is_dir() and len(list((folder / split).glob("*.png"))) == count
               for split, count in counts.items())


def contact_sheet(name, data_root="data", out_path="contact_sheet.png", n=8, tile=None):
    """Save a PNG grid of the first n paired test scenes: rows A, B and mask, one column per scene.

    tile: side of each picture in pixels (default: the dataset's size). Returns the output path.
    """
    folder = Path(data_root) / name
    names = sorted(p.name for p in (folder / "testA").glob("*.png"))[:n]
    if not names:
        raise FileNotFoundError(f"no test images in {folder}/testA; generate them with: python -m utils.datasets.synthetic {name}")
    rows = [("A", "testA"), ("B", "testB"), ("mask", "testMask")]
    info = read_info(folder) or {}
    labels = {"A": f"A: {info.get('domains', {}).get('A', 'A')}", "B": f"B: {info.get('domains', {}).get('B', 'B')}",
              "mask": "mask"}
    tile = tile or check_header(folder / "testA" / names[0])[0]   # (width, height)
    margin, label_width = 2, 64
    sheet = Image.new("RGB", (label_width + len(names) * (tile + margin), len(rows) * (tile + margin)), (200, 200, 200))
    draw = ImageDraw.Draw(sheet)
    for row, (key, split) in enumerate(rows):
        top = row * (tile + margin)
        draw.text((4, top + tile // 2 - 6), labels[key], fill="black")
        for column, file_name in enumerate(names):
            picture = read_rgb(folder / split / file_name, size=(tile, tile), resample=Image.LANCZOS)
            sheet.paste(Image.fromarray(picture), (label_width + column * (tile + margin), top))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_path, optimize=True)
    return out_path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "contact-sheet":
        parser = argparse.ArgumentParser(prog="python -m utils.datasets.synthetic contact-sheet",
                                         description="Save a PNG grid of paired test scenes (A, B, mask).")
        parser.add_argument("name", choices=SYNTHETIC_DATASETS)
        parser.add_argument("-o", "--output", required=True, help="PNG file to write")
        parser.add_argument("-n", type=int, default=8, help="number of scenes (columns)")
        parser.add_argument("--tile", type=int, default=None, help="side of each picture in pixels")
        parser.add_argument("--data-root", default="data")
        args = parser.parse_args(argv[1:])
        ensure_dataset(args.name, args.data_root)
        print(contact_sheet(args.name, args.data_root, args.output, args.n, args.tile))
        return 0
    parser = ArgumentParser(prog="python -m utils.datasets.synthetic", description=__doc__.split("\n\n")[0],
                            epilog="Also: python -m utils.datasets.synthetic contact-sheet <name> -o sheet.png")
    parser.add_argument("name", choices=SYNTHETIC_DATASETS)
    parser.add_argument("--size", type=positive_int, default=DEFAULTS["size"],
                        help=f"image side in pixels, 32 to {MAX_IMAGE_SIZE}")
    parser.add_argument("--n-train", type=positive_int, default=DEFAULTS["n_train"],
                        help="images in each of trainA, trainB")
    parser.add_argument("--n-test", type=positive_int, default=DEFAULTS["n_test"], help="paired test scenes")
    parser.add_argument("--seed", type=non_negative_int, default=DEFAULTS["seed"])
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--force", action="store_true", help="generate again even if a matching copy exists")
    args = parser.parse_args(argv)
    if not 32 <= args.size <= MAX_IMAGE_SIZE:
        parser.error(f"--size: must be from 32 to {MAX_IMAGE_SIZE} pixels, got {args.size}")
    path = ensure_dataset(args.name, args.data_root, size=args.size, n_train=args.n_train, n_test=args.n_test,
                          seed=args.seed, force=args.force)
    info = read_info(path)
    print(f"{path}: {info['n_train']} train images per domain, {info['n_test']} paired test scenes, "
          f"{info['size']}x{info['size']} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
