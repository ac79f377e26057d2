"""The shipped demo model (pretrained/synthetic_apple2orange_64) loads and translates; a 256 px picture
through this 64 px model is translated at 256 px: sharper than scaling to 64 px and back, and closer to
the true orange scene."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import translate as translate_script
from utils.datasets.synthetic import generate_dataset
from utils.inference.trained_model import load_generators

PRETRAINED = Path(__file__).parents[1] / "pretrained" / "synthetic_apple2orange_64"


def high_frequency_energy(image):
    """Mean absolute Laplacian of the gray image: what is left of edges and texture."""
    a = np.asarray(image, np.float32).mean(axis=-1)
    return float(np.abs(4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]).mean())


@pytest.fixture(scope="module")
def scenes_256(tmp_path_factory):
    """Paired synthetic test scenes at 256 px: apples (testA) and the same scenes with oranges (testB)."""
    root = tmp_path_factory.mktemp("data")
    generate_dataset("synthetic_apple2orange", data_root=root, size=256, n_train=1, n_test=2, seed=5)
    return root / "synthetic_apple2orange"


def test_the_shipped_model_is_the_demo(tmp_path):
    model = load_generators(PRETRAINED)
    assert model.config.input_dim == (64, 64, 3) and model.config.generator_type == "unet"
    assert model.g_AB.count_params() == 387_683
    assert (PRETRAINED / "README.md").read_text().count("python train.py --demo") >= 1
    assert sum(p.stat().st_size for p in PRETRAINED.iterdir()) < 5e6   # a few MB in the repository


def test_256px_scene_through_the_64px_model_is_translated_at_256px(scenes_256, tmp_path):
    for flags, out in (([], "own"), (["--fit"], "fit")):
        translate_script.main([str(PRETRAINED), "--direction", "AtoB", "--input", str(scenes_256 / "testA"),
                               "--output", str(tmp_path / out), "--no-progress", *flags])
    for name in ("scene_0000.png", "scene_0001.png"):
        apple = np.asarray(Image.open(scenes_256 / "testA" / name))
        truth = np.asarray(Image.open(scenes_256 / "testB" / name)).astype(np.float32)   # the same scene, oranges
        own = np.asarray(Image.open(tmp_path / "own" / name))
        fit = np.asarray(Image.open(tmp_path / "fit" / name))
        assert own.shape == fit.shape == apple.shape == (256, 256, 3)
        # Detail kept: at least half the input's high-frequency energy, twice that of scale-and-back.
        assert high_frequency_energy(own) > 0.5 * high_frequency_energy(apple)
        assert high_frequency_energy(own) > 2 * high_frequency_energy(fit)
        # And it is a translation: the fruit (testMask) is closer to the true oranges than the apples were,
        # and the whole picture closer to the true scene than scale-and-back is.
        fruit = np.asarray(Image.open(scenes_256 / "testMask" / name).convert("L")) > 127
        assert np.abs(own - truth)[fruit].mean() < 0.9 * np.abs(apple - truth)[fruit].mean()
        assert np.abs(own - truth).mean() < np.abs(fit - truth).mean()
