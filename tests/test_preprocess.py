"""--preprocess (the official code's option): how a training photo becomes a crop. 'crop' keeps the photo's
full-resolution texture; the default resize_and_crop is unchanged; every mode gives img_res crops."""

import numpy as np
import pytest
from PIL import Image

import train as train_script
from utils.datasets.loader import DataLoader, jitter
from utils.images import resize_rgb


def _windows(big, crop):
    """Every crop x crop window of `big` and of its mirror image, as bytes (to test membership)."""
    h, w = big.shape[:2]
    found = set()
    for image in (big, big[:, ::-1]):
        for top in range(h - crop + 1):
            for left in range(w - crop + 1):
                found.add(image[top:top + crop, left:left + crop].tobytes())
    return found


def test_crop_is_a_window_of_the_photo_at_full_resolution():
    photo = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    windows = _windows(photo, 16)
    for seed in range(5):
        out = jitter(photo, (16, 16), np.random.default_rng(seed), "crop")
        assert out.shape == (16, 16, 3) and out.tobytes() in windows


def test_resize_and_crop_is_still_the_default_jitter():
    photo = np.random.default_rng(1).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    out = jitter(photo, (32, 32), rng_a)
    resized = resize_rgb(photo, (36, 36))   # 32 * 286 / 256 = 35.75 -> 36
    top, left = rng_b.integers(0, 5), rng_b.integers(0, 5)
    expected = resized[top:top + 32, left:left + 32]
    assert np.array_equal(out, expected[:, ::-1] if rng_b.random() < 0.5 else expected)


def test_scale_width_keeps_the_aspect_ratio_and_none_only_resizes():
    tall = np.random.default_rng(2).integers(0, 256, (120, 30, 3), dtype=np.uint8)
    scaled = resize_rgb(tall, (144, 36))   # width 30 -> 36, height in proportion 120 -> 144
    out = jitter(tall, (32, 32), np.random.default_rng(0), "scale_width_and_crop")
    assert out.shape == (32, 32, 3) and out.tobytes() in _windows(scaled, 32)
    out = jitter(tall, (32, 32), np.random.default_rng(0), "none")
    assert out.tobytes() in _windows(resize_rgb(tall, (32, 32)), 32)


def test_small_photos_are_scaled_up_just_enough_and_bad_names_refused():
    small = np.random.default_rng(4).integers(0, 256, (20, 10, 3), dtype=np.uint8)
    for mode in ("crop", "scale_width_and_crop"):
        assert jitter(small, (32, 32), np.random.default_rng(0), mode).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="must be one of resize_and_crop, crop"):
        jitter(small, (32, 32), np.random.default_rng(0), "random")
    with pytest.raises(SystemExit):
        train_script.parse_args(["--dataset", "x", "--preprocess", "random"])


def test_the_loader_sees_full_detail_texture_with_crop(tmp_path):
    """A 1-pixel checkerboard at 128 px: crops keep it; the paper's resize to 36 px blurs it to grey."""
    board = (np.indices((128, 128)).sum(axis=0) % 2 * 255).astype(np.uint8)
    for split in ("trainA", "trainB", "testA", "testB"):
        (tmp_path / "boards" / split).mkdir(parents=True)
        Image.fromarray(np.repeat(board[..., None], 3, axis=-1)).save(tmp_path / "boards" / split / "board.png")
    contrast = {}
    for mode in ("crop", "resize_and_crop"):
        loader = DataLoader("boards", img_res=(32, 32), data_root=tmp_path, preprocess=mode)
        imgs_A, imgs_B = next(loader.load_batch(batch_size=1, epoch=0))
        assert imgs_A.shape == imgs_B.shape == (1, 32, 32, 3)
        contrast[mode] = float(np.abs(np.diff(imgs_A[0, ..., 0], axis=1)).mean())   # in [-1, 1] units
    assert contrast["crop"] == pytest.approx(2.0)   # every neighbour flips -1 <-> 1
    assert contrast["resize_and_crop"] < 0.5 * contrast["crop"]
