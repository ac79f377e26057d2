"""utils/datasets/loader.py: epochs, jitter, reproducible resume, background thread, bad input."""

import math
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.datasets.loader import DataLoader, DatasetError, jitter
from utils.images import read_rgb, resize_rgb, to_model_range

FIXTURES = Path(__file__).parent / "fixtures"
RES = (16, 16)


def _colour(domain, index):
    """A distinct flat colour per image, so a batch tells which files it came from."""
    return (40 + 30 * index, 200 if domain == "A" else 60, 100)


@pytest.fixture
def loader_root_tmp(tmp_path):
    """data/toy with 5 flat-colour images in trainA, 3 in trainB, 2 in each test folder (20 x 24 px)."""
    counts = {"trainA": 5, "trainB": 3, "testA": 2, "testB": 2}
    for split, count in counts.items():
        (tmp_path / "toy" / split).mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (24, 20), _colour(split[-1], index)).save(tmp_path / "toy" / split / f"{index}.png")
    return tmp_path


def _identify(batch, domain, count):
    """Which image index each item of a batch shows (by its flat colour)."""
    pixels = np.rint((batch[:, 8, 8, :] + 1) * 127.5)
    colours = np.array([_colour(domain, i) for i in range(count)])
    return [int(np.argmin(np.abs(colours - p).sum(axis=1))) for p in pixels]


def _epoch(loader, batch_size, epoch=0, start_batch=0):
    return list(loader.load_batch(batch_size, epoch=epoch, start_batch=start_batch))


# ----------------------------------------------------------------------------- epochs
def test_epoch_is_max_of_both_domains_and_keeps_the_last_small_batch(loader_root_tmp):
    loader = DataLoader("toy", RES, data_root=loader_root_tmp)
    assert (loader.n_A, loader.n_B) == (5, 3)
    assert loader.n_batches(2) == 3 and loader.n_batches(1) == 5 and loader.n_batches(8) == 1
    batches = _epoch(loader, 2)
    assert [len(a) for a, _ in batches] == [2, 2, 1] and [len(b) for _, b in batches] == [2, 2, 1]
    seen_A = sum((_identify(a, "A", 5) for a, _ in batches), [])
    seen_B = sum((_identify(b, "B", 3) for _, b in batches), [])
    assert sorted(seen_A) == [0, 1, 2, 3, 4]  # every A image exactly once
    assert set(seen_B) == {0, 1, 2} and len(seen_B) == 5  # every B image, the smaller domain repeated


def test_batches_are_float32_in_model_range_with_the_requested_shape(loader_root_tmp):
    loader = DataLoader("toy", (12, 20), data_root=loader_root_tmp)
    imgs_A, imgs_B = next(loader.load_batch(3))
    for images in (imgs_A, imgs_B):
        assert images.shape == (3, 12, 20, 3) and images.dtype == np.float32
        assert images.min() >= -1.0 and images.max() <= 1.0
    assert DataLoader("toy", 24, data_root=loader_root_tmp).load_img(loader.paths_A[0]).shape == (1, 24, 24, 3)


def test_shuffles_are_independent_and_change_with_the_epoch(loader_root_tmp):
    shutil.copytree(loader_root_tmp / "toy" / "trainA", loader_root_tmp / "toy" / "trainB", dirs_exist_ok=True)
    loader = DataLoader("toy", RES, data_root=loader_root_tmp)
    orders = [loader.epoch_order(epoch) for epoch in range(4)]
    assert any(not np.array_equal(a, b) for a, b in orders)  # A and B not shuffled alike
    assert len({tuple(a) for a, _ in orders}) > 1  # a new order each epoch


def test_same_seed_same_batches_and_a_resumed_epoch_matches(loader_root_tmp):
    first = _epoch(DataLoader("toy", RES, data_root=loader_root_tmp, seed=3), 2, epoch=1)
    again = _epoch(DataLoader("toy", RES, data_root=loader_root_tmp, seed=3), 2, epoch=1)
    resumed = _epoch(DataLoader("toy", RES, data_root=loader_root_tmp, seed=3), 2, epoch=1, start_batch=1)
    other_seed = _epoch(DataLoader("toy", RES, data_root=loader_root_tmp, seed=4), 2, epoch=1)
    for (a1, b1), (a2, b2) in zip(first, again):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    assert len(resumed) == 2
    for (a1, b1), (a2, b2) in zip(first[1:], resumed):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    assert any(not np.array_equal(a1, a2) for (a1, _), (a2, _) in zip(first, other_seed))


def test_start_batch_out_of_range_is_refused(loader_root_tmp):
    loader = DataLoader("toy", RES, data_root=loader_root_tmp)
    with pytest.raises(ValueError, match="start_batch"):
        next(loader.load_batch(2, start_batch=4))
    assert _epoch(loader, 2, start_batch=3) == []
    with pytest.raises(ValueError, match="batch_size"):
        loader.n_batches(0)


# ----------------------------------------------------------------------------- jitter
def test_jitter_is_a_crop_of_the_286_over_256_resize_sometimes_flipped():
    rng_image = np.random.default_rng(0)
    image = rng_image.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    big = resize_rgb(image, (36, 36))  # 32 * 286 / 256 = 35.75 -> 36
    rng = np.random.default_rng(1)
    flips, offsets = 0, set()
    for _ in range(40):
        out = jitter(image, (32, 32), rng)
        assert out.shape == (32, 32, 3) and out.dtype == np.uint8
        windows = {(top, left, flipped): big[top:top + 32, left:left + 32][:, ::-1] if flipped else
                   big[top:top + 32, left:left + 32] for top in range(5) for left in range(5) for flipped in (0, 1)}
        matches = [key for key, window in windows.items() if np.array_equal(window, out)]
        assert len(matches) == 1, "output is not one crop of the resized image"
        flips += matches[0][2]
        offsets.add(matches[0][:2])
    assert 5 <= flips <= 35 and len(offsets) > 5  # flips about half the time, crops move


def test_jitter_at_256_resizes_to_286():
    image = np.zeros((300, 300, 3), np.uint8)
    image[:, :150] = 255  # left half white: 143 of 286 columns after the resize
    rng = np.random.default_rng(0)
    counts = []
    for _ in range(12):
        out = jitter(image, (256, 256), rng)
        assert out.shape == (256, 256, 3)
        counts.append(int((out[128, :, 0] > 128).sum()))
    # A crop at left offset L in [0, 30] keeps 143 - L white columns (flipped or not);
    # a plain resize to 256 would keep 128 at most.
    assert all(112 <= count <= 144 for count in counts) and max(counts) > 132 and len(set(counts)) > 3


def test_test_images_are_resized_only(loader_root_tmp):
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(image).save(loader_root_tmp / "toy" / "testA" / "0.png")
    Image.fromarray(image).save(loader_root_tmp / "toy" / "testA" / "1.png")
    loader = DataLoader("toy", RES, data_root=loader_root_tmp)
    expected = to_model_range(resize_rgb(image, RES))
    for _ in range(3):
        np.testing.assert_array_equal(loader.load_data("A", 2, is_testing=True), np.stack([expected] * 2))
    np.testing.assert_array_equal(loader.load_img(loader.test_paths("A")[0]), expected[None])
    train = loader.load_data("B", batch_size=4)  # more than n_B: drawn with replacement
    assert train.shape == (4, 16, 16, 3) and train.dtype == np.float32
    with pytest.raises(ValueError, match="domain"):
        loader.load_data("C")


# ----------------------------------------------------------------------------- background thread
def test_decoding_runs_in_a_background_thread_that_stops_on_close(loader_root_tmp):
    loader = DataLoader("toy", RES, data_root=loader_root_tmp, prefetch=1)
    reader_threads = set()
    original = loader._read

    def spy(path):
        reader_threads.add(threading.current_thread().name)
        return original(path)

    loader._read = spy
    batches = loader.load_batch(1)
    next(batches)
    assert reader_threads == {"DataLoader-toy"}
    assert any(t.name == "DataLoader-toy" for t in threading.enumerate())
    batches.close()
    assert not any(t.name == "DataLoader-toy" for t in threading.enumerate())


def test_an_exhausted_epoch_leaves_no_thread(loader_root_tmp):
    _epoch(DataLoader("toy", RES, data_root=loader_root_tmp), 2)
    assert not any(t.name == "DataLoader-toy" for t in threading.enumerate())


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name, command", [("synthetic_apple2orange", "python -m utils.datasets.synthetic synthetic_apple2orange"),
                                           ("horse2zebra", "python -m utils.datasets.download horse2zebra"),
                                           ("my_photos", "python -m utils.datasets.download <name>")])
def test_missing_dataset_names_folder_layout_and_command(tmp_path, name, command):
    with pytest.raises(DatasetError) as caught:
        DataLoader(name, data_root=tmp_path)
    message = str(caught.value)
    assert str(tmp_path / name / "trainA") in message
    assert "{trainA,trainB,testA,testB}" in message and command in message and "--data-root" in message


def test_empty_folder_is_named(loader_root_tmp):
    shutil.rmtree(loader_root_tmp / "toy" / "trainB")
    (loader_root_tmp / "toy" / "trainB").mkdir()
    (loader_root_tmp / "toy" / "trainB" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no readable image files in: .*trainB"):
        DataLoader("toy", data_root=loader_root_tmp)


def test_missing_test_folder_is_named(loader_root_tmp):
    shutil.rmtree(loader_root_tmp / "toy" / "testB")
    loader = DataLoader("toy", data_root=loader_root_tmp)
    with pytest.raises(DatasetError, match="testB"):
        loader.test_paths("B")


def test_bad_files_are_named_in_warnings_and_skipped(loader_root_tmp):
    train_A = loader_root_tmp / "toy" / "trainA"
    (train_A / "zero.png").write_bytes(b"")
    (train_A / "text.jpg").write_text("not an image")
    good = (FIXTURES / "real_mini" / "trainA" / "n02381460_767.jpg").read_bytes()
    (train_A / "cut.jpg").write_bytes(good[: len(good) // 3])
    with pytest.warns(UserWarning) as caught:
        loader = DataLoader("toy", RES, data_root=loader_root_tmp)
        batches = _epoch(loader, 3)
    messages = " ".join(str(w.message) for w in caught)
    for name in ("zero.png", "text.jpg", "cut.jpg"):
        assert name in messages
    assert "empty" in messages and "not an image" in messages and "truncated" in messages
    assert loader.n_A == 6  # the truncated file only shows when decoded, and is then replaced
    assert [len(a) for a, _ in batches] == [3, 3]
    assert sorted(sum((_identify(a, "A", 5) for a, _ in batches), []))[:5] == [0, 1, 2, 3, 4]


def test_no_readable_image_is_a_clear_error(loader_root_tmp):
    train_A = loader_root_tmp / "toy" / "trainA"
    shutil.rmtree(train_A)
    train_A.mkdir()
    good = (FIXTURES / "real_mini" / "trainA" / "n02381460_767.jpg").read_bytes()
    for index in range(2):
        (train_A / f"cut{index}.jpg").write_bytes(good[: len(good) // 3])
    loader = DataLoader("toy", RES, data_root=loader_root_tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DatasetError, match="none of the image files could be read in: .*trainA"):
            _epoch(loader, 2)
    assert not any(t.name == "DataLoader-toy" for t in threading.enumerate())


# ----------------------------------------------------------------------------- real photos
def test_real_jpegs_with_grayscale_and_spaces_load(tmp_path):
    loader = DataLoader("real_mini", (32, 32), data_root=FIXTURES)
    assert (loader.n_A, loader.n_B) == (2, 3)
    assert "2014-09-11 01_07_17.jpg" in [p.name for p in loader.paths_B]
    batches = _epoch(loader, 2)
    assert len(batches) == math.ceil(3 / 2) and batches[0][1].shape == (2, 32, 32, 3)
    grey = loader.load_img(FIXTURES / "real_mini" / "trainB" / "n02391049_8008.jpg")
    assert grey.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    assert read_rgb(loader.test_paths("A")[0]).shape == (256, 256, 3)
