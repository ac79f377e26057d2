"""Translate: every image comes back at its own size; bad files are named and skipped."""

import numpy as np
import pytest
from PIL import Image

import translate as translate_script
from utils.images import resize_rgb, to_model_range, to_uint8
from utils.inference.translation import fitted_size, pad_to_size, translate_folder


@pytest.fixture
def input_folder(tmp_path):
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(folder / "odd.png")
    Image.fromarray(rng.integers(0, 255, (64, 20), dtype=np.uint8), mode="L").save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)).save(folder / "photo.jpg")
    Image.fromarray(rng.integers(0, 255, (5, 5, 3), dtype=np.uint8)).save(folder / "photo.png")  # same stem
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_every_image_keeps_its_size_and_bad_files_are_skipped(tiny_run, input_folder, tmp_path, capsys):
    written, skipped = translate_folder(tiny_run, "AtoB", input_folder, tmp_path / "out")
    sizes = {p.name: Image.open(p).size for p in written}
    assert sizes == {"odd.png": (53, 37), "gray.png": (20, 64), "photo.png": (200, 300), "photo_png.png": (5, 5)}
    assert all(Image.open(p).mode == "RGB" for p in written)
    assert [p.name for p, reason in skipped] == ["broken.png"]
    assert "broken.png" in capsys.readouterr().out


def test_limit_translates_only_the_first_images_by_name(tiny_run, input_folder, tmp_path):
    written, skipped = translate_folder(tiny_run, "AtoB", input_folder, tmp_path / "out", progress=False, limit=3)
    assert [p.name for p in written] == ["gray.png", "odd.png"] and [p.name for p, _ in skipped] == ["broken.png"]
    assert len(list((tmp_path / "out").iterdir())) == 2   # the three first images by name; photo.* not touched


def test_default_output_folder_is_inside_the_run(tiny_run, input_folder):
    written, _ = translate_folder(tiny_run / "weights" / "ckpt-00000000", "BtoA", input_folder, progress=False)
    assert written[0].parent == tiny_run / "translated" / "BtoA_inputs"


def test_command_line(tiny_run, input_folder, tmp_path):
    translate_script.main([str(tiny_run), "--direction", "BtoA", "--input", str(input_folder),
                           "--output", str(tmp_path / "cli"), "--no-progress"])
    assert len(list((tmp_path / "cli").glob("*.png"))) == 4
    with pytest.raises(SystemExit):
        translate_script.main([str(tiny_run), "--direction", "AtoA", "--input", str(input_folder)])


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 20, 3), (1, 90, 3), (128, 128, 3)])
def test_fit_and_restore_round_trip_keeps_size_and_content(shape):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.stack([(yy * 255 // max(1, shape[0] - 1)), (xx * 255 // max(1, shape[1] - 1)),
                      np.full_like(yy, 128)], axis=-1).astype(np.uint8)   # smooth gradients
    padded, (top, left, h, w) = pad_to_size(resize_rgb(image, fitted_size(shape[:2], (32, 32))), (32, 32))
    x = to_model_range(padded)
    assert x.shape == (32, 32, 3) and x.min() >= -1 and x.max() <= 1 and max(h, w) == 32
    back = resize_rgb(to_uint8(x[top:top + h, left:left + w]), shape[:2])
    assert back.shape == shape
    if min(shape[:2]) > 16:   # a thin strip cannot survive a 32 px model anyway
        assert np.abs(back.astype(int) - image).mean() < 12


def test_a_grayscale_model_translates_the_gray_it_trained_on_in_translate_and_on_the_page():
    """Issue #34: training (and its grids) turn RGB into gray by the channel mean; translate.py used ITU-R 601
    luma and the page the mean, so a grayscale model saw other inputs than it trained on. Pure green: mean 85,
    luma 150. Now every path goes through utils.images.to_model_channels."""
    from models import CycleGAN
    from utils.images import to_model_channels
    from utils.inference.serve import Translator
    from utils.inference.trained_model import load_generators
    from utils.inference.translation import translate_at_own_size, translate_image
    from utils.training.loop import match_channels

    green = np.zeros((32, 32, 3), np.uint8)
    green[..., 1] = 255
    assert to_model_channels(green, 1)[0, 0, 0] == 85 and to_model_channels(green, 3) is not None
    np.testing.assert_allclose(match_channels(green[None] / 255.0, 1), green[None, ..., 1:2] / 255.0 / 3, rtol=1e-6)
    model = load_generators(CycleGAN(input_dim=(32, 32, 1), gen_n_filters=4, disc_n_filters=4, seed=0))
    expected = translate_at_own_size(model.generator("AtoB"), np.full((32, 32, 1), 85, np.uint8),
                                     model.size_multiple, None)
    np.testing.assert_array_equal(translate_image(model, green, "AtoB"), expected)
    page = Translator([("gray", model)], max_side=64, max_bytes=100_000)
    np.testing.assert_array_equal(page.translate(green)[0][1]["AtoB"], expected)
