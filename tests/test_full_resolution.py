"""Full-resolution translation: padding, any-size generators equal to the trained ones, the size cap,
and loading g_AB / g_BA from a CycleGAN, a run, a checkpoint or a model folder."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image

import translate as translate_script
from models import CycleGAN
from models.generators import run_generator
from utils.images import to_model_range, to_uint8
from utils.inference.trained_model import load_generators, save_model_folder
from utils.inference.translation import pad_to_multiple, scaled_size, translate_at_own_size
from utils.training import checkpoint

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, seed=0)


@pytest.fixture(scope="module")
def gan():
    return CycleGAN(**TINY)


@pytest.fixture(scope="module")
def run_folder(gan, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "0001_tiny"
    checkpoint.save(gan, run / "weights")
    return run


def _photo(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("hw, multiple, padded", [((37, 53), 16, (48, 64)), ((64, 20), 4, (64, 32)),
                                                  ((5, 5), 16, (32, 32)), ((1, 90), 4, (32, 92))])
def test_pad_to_multiple_mirrors_the_border_and_keeps_the_image(hw, multiple, padded):
    image = _photo(*hw)
    x, (top, left, h, w) = pad_to_multiple(image, multiple)
    assert x.shape[:2] == padded and x.shape[0] % multiple == 0 and x.shape[1] % multiple == 0
    assert (h, w) == hw and np.array_equal(x[top:top + h, left:left + w], image)
    if top and h > 1:   # reflection, not edge repeat: the row above the image is its second row
        assert np.array_equal(x[top - 1, left:left + w], image[1])


def test_any_size_generators_equal_the_trained_ones_at_the_training_size(gan):
    model = load_generators(gan)
    x = to_model_range(_photo(32, 32))[None]
    for direction, trained in (("AtoB", gan.g_AB), ("BtoA", gan.g_BA)):
        assert model.generator(direction).input_shape == (None, None, None, 3)
        assert np.abs(run_generator(model.generator(direction), x) - gan.translate(x, direction)).max() < 1e-6


def test_an_image_is_translated_at_its_own_size(gan):
    """A 48 x 80 image (multiples of 16) goes through the network as it is; a 37 x 53 one padded by reflection."""
    model = load_generators(gan)
    g = model.g_AB
    image = _photo(48, 80)
    direct = to_uint8(run_generator(g, to_model_range(image)[None])[0])
    assert np.array_equal(translate_at_own_size(g, image, 16), direct)

    odd = _photo(37, 53, seed=1)
    padded, (top, left, h, w) = pad_to_multiple(odd, 16)
    expected = to_uint8(run_generator(g, to_model_range(padded)[None])[0])[top:top + h, left:left + w]
    out = translate_at_own_size(g, odd, 16)
    assert out.shape == (37, 53, 3) and np.array_equal(out, expected)


def test_max_side_translates_a_scaled_copy_and_says_so(run_folder, tmp_path, capsys):
    assert scaled_size((100, 60), 50) == (50, 30) and scaled_size((100, 60), 0) == (100, 60)
    model = load_generators(run_folder)
    image = _photo(100, 60)
    capped = translate_at_own_size(model.g_AB, image, 16, max_side=50)
    small = translate_at_own_size(model.g_AB, np.asarray(Image.fromarray(image).resize((30, 50), Image.BICUBIC)), 16)
    assert capped.shape == (100, 60, 3)
    assert np.array_equal(capped, np.asarray(Image.fromarray(small).resize((60, 100), Image.BICUBIC)))

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(image).save(folder / "big.png")
    translate_script.main([str(run_folder), "--direction", "AtoB", "--input", str(folder), "--output",
                           str(tmp_path / "out"), "--max-side", "50"])
    assert "big.png: 60x100 px is above --max-side 50: translated at 30x50" in capsys.readouterr().out
    assert Image.open(tmp_path / "out" / "big.png").size == (60, 100)
    with pytest.raises(SystemExit):
        translate_script.main([str(run_folder), "--direction", "AtoB", "--input", str(folder), "--max-side", "-1"])


def test_fit_and_own_size_agree_on_an_image_of_the_training_size(run_folder, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_photo(32, 32)).save(folder / "a.png")
    for flags, out in (([], "own"), (["--fit"], "fit")):
        translate_script.main([str(run_folder), "--direction", "BtoA", "--input", str(folder), "--output",
                               str(tmp_path / out), "--no-progress", *flags])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "own" / "a.png")),
                          np.asarray(Image.open(tmp_path / "fit" / "a.png")))


def test_run_checkpoint_and_model_folders_load_the_same_generators(gan, run_folder, tmp_path):
    x = to_model_range(_photo(48, 32))[None]
    reference = run_generator(load_generators(gan).g_BA, x)
    folder = save_model_folder(run_folder, tmp_path / "model", made_by="python train.py --test")
    meta = json.loads((folder / "config.json").read_text())
    assert meta["made_by"] == "python train.py --test" and meta["model"]["input_dim"] == [32, 32, 3]
    for source in (run_folder, run_folder / "weights" / "ckpt-00000000", folder):
        assert np.abs(run_generator(load_generators(source).g_BA, x) - reference).max() < 1e-6

    half = save_model_folder(folder, tmp_path / "half", made_by="-", float16=True)
    sizes = {"float16": 0, "float32": 0}   # values stored per dtype; the tanh conv is float32 by design
    with h5py.File(half / "g_BA.weights.h5") as f:
        f.visititems(lambda name, item: sizes.__setitem__(str(item.dtype), sizes[str(item.dtype)] + item.size)
                     if isinstance(item, h5py.Dataset) else None)
    assert sizes["float16"] > 0.9 * (sizes["float16"] + sizes["float32"])
    half_model = load_generators(half)
    assert half_model.g_BA.weights[0].dtype == "float32"   # stored in float16, computed in float32
    assert np.abs(run_generator(half_model.g_BA, x) - reference).max() < 1e-2


def test_a_folder_without_generators_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no trained generators"):
        load_generators(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such model"):
        load_generators(tmp_path / "missing")


@pytest.mark.long
def test_a_1024_px_photo_translates_in_seconds_on_an_avx2_cpu_too(tmp_path):
    """translate.py picks TensorFlow's CPU kernels for translating before TensorFlow loads (utils/runtime/onednn.py).
    With oneDNN on an AVX2-only CPU the book U-Net's 256 x 256 x 256 convolution of a 1024 px photo fell back to
    oneDNN's reference kernel and never finished; ONEDNN_MAX_CPU_ISA=AVX2 makes any x86 CPU behave so. The
    bound is generous (seconds are expected): a hang fails here, not on a student's evening."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    book = CycleGAN(input_dim=(128, 128, 3), generator_type="unet", gen_n_filters=32, disc_n_filters=8, seed=0)
    folder = save_model_folder(book, tmp_path / "book_unet", made_by="a test")
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[:1024, :1024]
    Image.fromarray(np.stack([(yy * 7 + xx * 3) % 256, (xx * 5) % 256, (yy * 11) % 256], -1).astype(np.uint8)
                    ).save(photos / "big.png")
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_ENABLE_ONEDNN_OPTS", "CYCLEGAN_KERNELS_CHOSEN_FOR")}
    env.update(ONEDNN_MAX_CPU_ISA="AVX2", CUDA_VISIBLE_DEVICES="-1")
    done = subprocess.run([sys.executable, "translate.py", str(folder), "--direction", "AtoB", "--input", str(photos),
                           "--output", str(tmp_path / "out"), "--no-progress"],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "big.png").size == (1024, 1024)
    # translated at 1024 px, not at the notebooks' safe side and scaled back (the note it prints when it caps)
    assert "translated at most" not in done.stdout + done.stderr
