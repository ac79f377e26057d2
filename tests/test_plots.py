"""Pictures: the reconstruction grid's layout, loss curves, the GIF, the results page."""

import json

import numpy as np
import pytest
from PIL import Image

from utils import plots

from utils.training import page
from utils.training.settings import TrainingSettings


class FakeGAN:
    """Stands in for a CycleGAN whose generators map x to -x, so A -> B -> A gives back A exactly."""

    def translate(self, imgs, direction="AtoB"):
        assert direction in ("AtoB", "BtoA")
        return -np.asarray(imgs)


def images(n, value, size=32, channels=3):
    return np.full((n, size, size, channels), value, np.float32)


def test_reconstruction_rows_follow_the_book_figure():
    rows, labels = plots.reconstruction_rows(FakeGAN(), images(2, 0.5), images(2, -0.25))
    assert rows.shape == (4, 4, 32, 32, 3)                 # 2 A rows, 2 B rows; 4 columns
    assert labels == ["A → B → A"] * 2 + ["B → A → B"] * 2
    np.testing.assert_array_equal(rows[0, :, 0, 0, 0], [0.5, -0.5, 0.5, -0.5])       # A, B, A again, identity
    np.testing.assert_array_equal(rows[3, :, 0, 0, 0], [-0.25, 0.25, -0.25, 0.25])


@pytest.mark.parametrize("channels", [1, 3])
def test_grids_are_pngs_of_one_size_with_titles(tmp_path, channels):
    first = plots.save_reconstruction_grid(FakeGAN(), images(1, 0.1, channels=channels),
                                           images(1, 0.2, channels=channels), tmp_path / "grid_0000000.png",
                                           title="step 0")
    second = plots.save_reconstruction_grid(FakeGAN(), images(1, 0.9, channels=channels),
                                            images(1, -0.9, channels=channels), tmp_path / "grid_0000010.png",
                                            title="a much longer title at step 10, epoch 0.25")
    assert Image.open(first).size == Image.open(second).size
    assert not list(tmp_path.glob(".*"))               # written through a temporary file, renamed


def test_loss_curves_smooth_and_survive_an_empty_log(tmp_path):
    steps = np.arange(1, 301)
    rng = np.random.default_rng(0)
    history = {"step": steps, **{name: 1 / np.sqrt(steps) + rng.normal(0, 0.05, len(steps))
                                 for names in plots.LOSS_PANELS.values() for name in names}}
    path = plots.save_loss_curves(history, tmp_path / "losses.png", title="losses")
    assert Image.open(path).size == (1000, 650)
    empty = {"step": np.array([]), **{name: np.array([]) for names in plots.LOSS_PANELS.values() for name in names}}
    plots.save_loss_curves(empty, tmp_path / "empty.png")


def test_smoothing_is_debiased_and_follows_the_trend():
    values = np.full(100, 3.0)
    np.testing.assert_allclose(plots.smooth(values, 0.9), 3.0)      # no pull towards 0 at the start
    ramp = plots.smooth(np.arange(1000.0))
    assert np.all(np.diff(ramp) > 0) and ramp[-1] > 900


def test_gif_has_at_most_max_frames_first_and_last_included(tmp_path):
    paths = [plots.save_reconstruction_grid(FakeGAN(), images(1, v), images(1, -v), tmp_path / f"grid_{i:07d}.png")
             for i, v in enumerate(np.linspace(-1, 1, 7))]
    gif = plots.save_grid_animation(paths, tmp_path / "progress.gif", max_frames=4)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4
        first = np.asarray(animation.convert("RGB"))
    width, height = Image.open(paths[0]).size
    assert first.shape[:2] == (round(height * 0.6), round(width * 0.6))     # frames scaled by 0.6
    assert plots.save_grid_animation([], tmp_path / "none.gif") is None


def test_image_pairs_take_images_of_different_sizes(tmp_path):
    inputs = [np.zeros((37, 53, 3), np.uint8), np.full((20, 64, 3), 200, np.uint8)]
    path = plots.save_image_pairs(inputs, inputs, tmp_path / "pairs.png")
    assert Image.open(path).size[0] > 0


def test_index_html_marks_settings_that_differ_from_the_defaults(tmp_path):
    run = tmp_path / "0007_demo"
    (run / "images").mkdir(parents=True)
    meta = {"dataset": "demo", "created": "today",
            "model": {"input_dim": [64, 64, 3], "learning_rate": 0.0002, "lambda_validation": 1.0,
                      "lambda_reconstr": 10.0, "lambda_id": 5.0, "generator_type": "unet", "gen_n_filters": 32,
                      "disc_n_filters": 32, "n_resnet_blocks": 6, "buffer_max_length": 50, "beta_1": 0.5,
                      "beta_2": 0.999, "epochs": 100, "decay_epochs": 100, "seed": 0},
            "training": {**TrainingSettings.defaults(), "sample_interval": 50}, "environment": {"keras": "3"}}
    (run / "config.json").write_text(json.dumps(meta))
    html = page.write_index(run, status="training <step 3>").read_text()
    changed = set(__import__("re").findall(r'<tr class="changed"><td>\w+</td><td>(\w+)</td>', html))
    assert changed == {"input_dim", "lambda_id", "sample_interval"}
    assert "training &lt;step 3&gt;" in html                  # escaped
    assert "http" not in html and "<script" not in html        # offline, no scripts


def test_pool_picture_shows_this_steps_fake_beside_the_pools_older_ones(tmp_path):
    from models import CycleGAN
    gan = CycleGAN(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4)
    imgs = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    for _ in range(3):
        gan.train_step(imgs, imgs)
    path = plots.save_pool_picture(gan, imgs, tmp_path / "pool.png", n=6)
    width, height = Image.open(path).size
    # One row of 1.6-inch cells at 100 dpi: the fake and the 3 pooled images side by side, not two rows.
    assert len(gan.pool_A) == 3 and width >= 4 * 160 and height < 2 * 160


def test_kid_is_printed_with_its_spread_at_one_sensible_precision():
    assert page.kid_with_spread(0.0023, 0.0011) == "0.0023 ± 0.0011"
    assert page.kid_with_spread(3.23, 0.53) == "3.2 ± 0.5"
    assert page.kid_with_spread(0.05, 7.9e-16) == "0.050 ± <0.001"   # a tiny test set: no spread to speak of
    assert page.kid_with_spread(0.0, 0.0) == "0 ± 0"
