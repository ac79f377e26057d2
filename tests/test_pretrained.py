"""The shipped apple2orange model loads, translates a real photo at its own size, and still scores as documented.

pretrained/apple2orange_128/metrics.json records, for the 8 real test photos of each domain in
../shared/datasets/real-sample/apple2orange (fixtures beside the repository), how much the model changes
them and how well it cycles back. A silent change in preprocessing (pixel range, channel order, resizing,
weight loading) moves these figures far more than the tolerance.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.unpaired_evaluation import real_sample_figures

SAMPLE = "shared/datasets/real-sample/apple2orange"

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "pretrained" / "apple2orange_128"
TOLERANCE = 0.02   # absolute, on figures in [0, 1]


@pytest.fixture(scope="module")
def generators():
    from utils.trained_model import load_generators
    return load_generators(MODEL)


def test_the_shipped_model_is_small_and_says_how_it_was_made():
    size = sum(p.stat().st_size for p in MODEL.iterdir() if p.is_file())
    assert size <= 15 * 2 ** 20, f"{MODEL} is {size / 2 ** 20:.1f} MiB, over the 15 MiB budget"
    meta = json.loads((MODEL / "config.json").read_text())
    assert "train.py --dataset apple2orange" in meta["made_by"]
    assert (MODEL / "README.md").is_file() and (MODEL / "metrics.json").is_file()


@pytest.mark.skipif(not (ROOT.parent / SAMPLE).is_dir(), reason=f"the real-sample fixtures ../{SAMPLE} are not here")
def test_it_translates_a_real_apple_at_its_own_size(generators, tmp_path):
    from utils.translate import translate_folder

    source = ROOT.parent / SAMPLE / "testA"
    photo = sorted(source.iterdir())[0]
    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(photo).convert("RGB").resize((200, 150)).save(folder / "apple.png")
    written, skipped = translate_folder(MODEL, "AtoB", folder, tmp_path / "out", progress=False)
    assert not skipped and [p.name for p in written] == ["apple.png"]
    out = np.asarray(Image.open(written[0]))
    assert out.shape == (150, 200, 3) and out.std() > 5   # a picture, not a flat colour


@pytest.mark.skipif(not (ROOT.parent / SAMPLE).is_dir(), reason=f"the real-sample fixtures ../{SAMPLE} are not here")
def test_it_still_scores_as_documented_on_the_real_sample(generators):
    documented = json.loads((MODEL / "metrics.json").read_text())["real_sample"]
    measured = real_sample_figures(generators, ROOT.parent / SAMPLE)
    for key, value in documented.items():
        assert measured[key] == pytest.approx(value, abs=TOLERANCE), key
