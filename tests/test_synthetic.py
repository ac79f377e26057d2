"""utils/datasets/synthetic.py: layout, determinism, paired scenes that differ only inside the mask."""

import colorsys
import json

import numpy as np
import pytest
from PIL import Image

from utils.datasets import synthetic
from utils.datasets.loader import DataLoader
from utils.datasets.still_life import still_life
from utils.datasets.synthetic import SYNTHETIC_DATASETS, contact_sheet, ensure_dataset, generate_dataset

TINY = {"size": 40, "n_train": 3, "n_test": 4}
SPLITS = ("trainA", "trainB", "testA", "testB", "testMask")


def _read(path):
    return np.asarray(Image.open(path))


def _all_bytes(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_layout_counts_sizes_and_info(tmp_path, name):
    path = generate_dataset(name, tmp_path, **TINY)
    assert path == tmp_path / name
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary folder left
    for split in SPLITS:
        files = sorted((path / split).glob("*.png"))
        assert len(files) == (3 if split.startswith("train") else 4)
        assert _read(files[0]).shape[:2] == (40, 40)
    assert [p.name for p in sorted((path / "testA").iterdir())] == [p.name for p in sorted((path / "testB").iterdir())]
    info = json.loads((path / "info.json").read_text())
    assert info["name"] == name and info["size"] == 40 and info["n_train"] == 3 and info["n_test"] == 4
    assert info["seed"] == 0 and info["generator_version"] == synthetic.GENERATOR_VERSION
    loader = DataLoader(name, (32, 32), data_root=tmp_path)
    imgs_A, imgs_B = next(loader.load_batch(2))
    assert imgs_A.shape == imgs_B.shape == (2, 32, 32, 3)


@pytest.mark.parametrize("name", SYNTHETIC_DATASETS)
def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path, name):
    first = _all_bytes(generate_dataset(name, tmp_path / "one", seed=5, **TINY))
    second = _all_bytes(generate_dataset(name, tmp_path / "two", seed=5, **TINY))
    other = _all_bytes(generate_dataset(name, tmp_path / "three", seed=6, **TINY))
    assert first == second
    assert first.keys() == other.keys()
    assert first["testA/scene_0000.png"] != other["testA/scene_0000.png"]


def _dilate(mask):
    """Grow a boolean mask by one pixel in the 8 directions."""
    padded = np.pad(mask, 1)
    return np.any([padded[1 + dy:1 + dy + mask.shape[0], 1 + dx:1 + dx + mask.shape[1]]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)


def test_paired_apple_and_orange_scenes_differ_only_inside_the_mask(tmp_path):
    path = generate_dataset("synthetic_apple2orange", tmp_path, size=64, n_train=1, n_test=8)
    for file in sorted((path / "testA").glob("*.png")):
        image_A, image_B = _read(file).astype(int), _read(path / "testB" / file.name).astype(int)
        mask = _read(path / "testMask" / file.name)
        assert set(np.unique(mask)) <= {0, 255} and mask.ndim == 2
        fruit = mask == 255
        assert 0.01 < fruit.mean() < 0.6
        changed = np.abs(image_A - image_B).max(axis=-1) > 0
        # The mask holds every pixel a fruit touches, its anti-aliased edge included: outside it,
        # A and B are identical, byte for byte. And it is tight: no wider than the change + 1 px.
        assert not (changed & ~fruit).any(), f"{file.name}: background differs outside the mask"
        assert not (fruit & ~_dilate(changed)).any(), f"{file.name}: mask is wider than the change"
        assert np.abs(image_A - image_B)[fruit].mean() > 20  # the fruit really changes


def _orange_share(image, mask):
    """Fraction of the masked pixels that are saturated orange (hue 18-42 degrees)."""
    pixels = image[mask].astype(float) / 255
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
    return float(np.mean((hsv[:, 0] * 360 >= 18) & (hsv[:, 0] * 360 <= 42) & (hsv[:, 1] > 0.5)))


def test_apples_are_not_orange_and_oranges_are():
    for index in range(6):
        scene = still_life(np.random.default_rng([0, 2, index]), 48)
        fruit = scene["mask"] == 255
        assert _orange_share(scene["A"], fruit) < 0.2
        assert _orange_share(scene["B"], fruit) > 0.6


def test_photo_and_painting_pairs_share_the_scene_with_a_full_mask(tmp_path):
    path = generate_dataset("synthetic_photo2painting", tmp_path, size=48, n_train=1, n_test=3)
    for file in sorted((path / "testA").glob("*.png")):
        photo, painting = _read(file).astype(float), _read(path / "testB" / file.name).astype(float)
        assert (_read(path / "testMask" / file.name) == 255).all()
        assert np.abs(photo - painting).mean() > 5  # a different style ...
        assert np.abs(photo.mean(axis=(0, 1)) - painting.mean(axis=(0, 1))).max() < 40  # ... of the same scene
        top, bottom = photo[:8].mean(), photo[-8:].mean()
        assert np.sign(top - bottom) == np.sign(painting[:8].mean() - painting[-8:].mean()) or abs(top - bottom) < 10


def test_train_sets_are_unpaired(tmp_path):
    path = generate_dataset("synthetic_apple2orange", tmp_path, size=32, n_train=2, n_test=1)
    apple, orange = _read(path / "trainA" / "apple_0000.png"), _read(path / "trainB" / "orange_0000.png")
    assert np.abs(apple[:6].astype(int) - orange[:6]).mean() > 3  # different walls: different scenes


def test_ensure_reuses_a_complete_copy_and_regenerates_otherwise(tmp_path):
    path = ensure_dataset("synthetic_apple2orange", tmp_path, **TINY)
    stamp = (path / "info.json").stat().st_mtime_ns
    assert ensure_dataset("synthetic_apple2orange", tmp_path, **TINY) == path
    assert ensure_dataset("synthetic_apple2orange", tmp_path) == path  # no settings given: any copy will do
    assert (path / "info.json").stat().st_mtime_ns == stamp
    (path / "trainB" / "orange_0001.png").unlink()
    ensure_dataset("synthetic_apple2orange", tmp_path, **TINY)
    assert (path / "trainB" / "orange_0001.png").is_file()
    ensure_dataset("synthetic_apple2orange", tmp_path, **dict(TINY, size=24))
    assert _read(path / "testA" / "scene_0000.png").shape == (24, 24, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic_apple2orange"]


def test_a_copy_of_another_size_is_made_again_at_the_models_size_saying_so(tmp_path, capsys):
    """`make demo` leaves a 64 px copy; a 128 px model must not train on it blown up (utils.training.trainer.open_dataset)."""
    path = ensure_dataset("synthetic_apple2orange", tmp_path, **dict(TINY, seed=3))
    assert synthetic.ensure_size("synthetic_apple2orange", tmp_path, size=40) == path
    assert capsys.readouterr().out == ""                                    # the right size: reused silently
    synthetic.ensure_size("synthetic_apple2orange", tmp_path, size=48)
    out = capsys.readouterr().out
    assert "holds 40 px images, this model takes 48 px" in out and "--size 40" in out
    info = synthetic.read_info(path)
    assert (info["size"], info["n_train"], info["n_test"], info["seed"]) == (48, 3, 4, 3)   # counts and seed kept
    assert _read(path / "trainA" / "apple_0000.png").shape == (48, 48, 3)


def test_existing_folder_needs_force_and_unknown_names_are_listed(tmp_path):
    generate_dataset("synthetic_photo2painting", tmp_path, **TINY)
    with pytest.raises(FileExistsError, match="force"):
        generate_dataset("synthetic_photo2painting", tmp_path, **TINY)
    with pytest.raises(ValueError, match="synthetic_apple2orange, synthetic_photo2painting"):
        generate_dataset("synthetic_horse2zebra", tmp_path)


def test_an_interrupted_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing_save(array, path):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt
        Image.fromarray(array).save(path)

    monkeypatch.setattr(synthetic, "_save_png", failing_save)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset("synthetic_apple2orange", tmp_path, **TINY)
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet_and_command_line(tmp_path, capsys):
    assert synthetic.main(["synthetic_apple2orange", "--data-root", str(tmp_path), "--size", "32",
                           "--n-train", "2", "--n-test", "3"]) == 0
    assert "2 train images per domain, 3 paired test scenes" in capsys.readouterr().out
    out = contact_sheet("synthetic_apple2orange", tmp_path, tmp_path / "sheet.png", n=2, tile=20)
    assert Image.open(out).size == (64 + 2 * 22, 3 * 22)
    assert synthetic.main(["contact-sheet", "synthetic_apple2orange", "--data-root", str(tmp_path),
                           "-o", str(tmp_path / "cli.png"), "-n", "3"]) == 0
    assert Image.open(tmp_path / "cli.png").size == (64 + 3 * 34, 3 * 34)
    with pytest.raises(FileNotFoundError, match="python -m utils.datasets.synthetic synthetic_photo2painting"):
        contact_sheet("synthetic_photo2painting", tmp_path, tmp_path / "none.png")


def test_drawing_only_near_each_fruit_changes_nothing(monkeypatch):
    from utils.datasets import still_life as scenes

    boxed = [still_life(np.random.default_rng([0, 2, index]), 48) for index in range(20)]
    monkeypatch.setattr(scenes, "_fruit_box", lambda fruit, size: (slice(0, size), slice(0, size)))
    for index, scene in enumerate(boxed):
        full = still_life(np.random.default_rng([0, 2, index]), 48)
        for key in ("A", "B", "mask"):
            np.testing.assert_array_equal(scene[key], full[key])
