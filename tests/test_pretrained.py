"""The shipped real-photo models load, translate a real photo at its own size, and still score as documented.

Each model's metrics.json records, for the 8 real test photos of each domain in
../shared/datasets/real-sample/<dataset> (fixtures beside the repository), how much the model changes
them and how well it cycles back. A silent change in preprocessing (pixel range, channel order, resizing,
weight loading) moves these figures far more than the tolerance.

    apple2orange_128   the book's U-Net, trained on a CPU (train.py)
    monet2photo_256    the book's Monet ResNet, trained on a GPU (benchmarks/gpu_showcase.sh)
    monet2photo_bilinear_128   the Monet ResNet with resize-convolution upsampling, trained on a CPU (issue #33)
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.evaluation.unpaired import real_sample_figures

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.02   # absolute, on figures in [0, 1]
# model folder -> (its real-sample folder, the direction from a photo, test folder of that photo, how it was made)
MODELS = {
    "apple2orange_128": ("shared/datasets/real-sample/apple2orange", "AtoB", "testA", "train.py --dataset apple2orange"),
    "monet2photo_256": ("shared/datasets/real-sample/monet2photo", "BtoA", "testB", "benchmarks/gpu_showcase.sh"),
    "monet2photo_bilinear_128": ("shared/datasets/real-sample/monet2photo", "BtoA", "testB", "train.py --dataset monet2photo"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def shipped(request):
    from utils.inference.trained_model import load_generators
    folder = ROOT / "pretrained" / request.param
    return folder, MODELS[request.param], load_generators(folder)


def needs_sample(sample):
    if not (ROOT.parent / sample).is_dir():
        pytest.skip(f"the real-sample fixtures ../{sample} are not here")


def test_the_shipped_model_is_small_and_says_how_it_was_made(shipped):
    folder, (_, _, _, made_by), _ = shipped
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert size <= 15 * 2 ** 20, f"{folder} is {size / 2 ** 20:.1f} MiB, over the 15 MiB budget"
    meta = json.loads((folder / "config.json").read_text())
    assert made_by in meta["made_by"]
    assert (folder / "README.md").is_file() and (folder / "metrics.json").is_file()


def test_it_translates_a_real_photo_at_its_own_size(shipped, tmp_path):
    from utils.inference.translation import translate_folder

    folder, (sample, direction, test_split, _), _ = shipped
    needs_sample(sample)
    photo = sorted((ROOT.parent / sample / test_split).iterdir())[0]
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.open(photo).convert("RGB").resize((200, 150)).save(inputs / "photo.png")
    written, skipped = translate_folder(folder, direction, inputs, tmp_path / "out", progress=False)
    assert not skipped and [p.name for p in written] == ["photo.png"]
    out = np.asarray(Image.open(written[0]))
    assert out.shape == (150, 200, 3) and out.std() > 5   # a picture, not a flat colour


@pytest.mark.long
def test_it_still_scores_as_documented_on_the_real_sample(shipped):
    folder, (sample, _, _, _), generators = shipped
    needs_sample(sample)
    documented = json.loads((folder / "metrics.json").read_text())["real_sample"]
    measured = real_sample_figures(generators, ROOT.parent / sample)
    for key, value in documented.items():
        assert measured[key] == pytest.approx(value, abs=TOLERANCE), key
