"""The checkerboard score (utils/evaluation/checkerboard.py) tells a faint 2- or 4-pixel grid from a real picture.

Real photos and paintings (../shared/datasets/real-sample/monet2photo, beside the repository) score about
the same low level; the same images with a faint grid like the one a stride-2 transposed convolution
leaves score far above, and so do the shipped Monet model's translations. Synthetic cases pin down the
design: a grid on a smooth area beside a flat white one or inside a textured picture still counts.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.evaluation import checkerboard as cb

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "datasets" / "real-sample" / "monet2photo"   # testA paintings, testB photos
FIXTURES = ROOT / "tests" / "fixtures" / "real_mini"
REAL_LEVEL = 0.3      # real pictures' median and p90 stay below this
FAR_ABOVE = 0.5       # a grid's median is at least this much above the real images' p90


def overlap_pattern(period):
    """The uneven overlap of a 3x3 stride-2 transposed convolution (1, 2 contributions a row, so 1, 2, 2, 4
    in 2-D) as a zero-mean pattern of peak 1; period 4: two such steps, the first's pattern upsampled."""
    one = np.outer([1.0, 2.0], [1.0, 2.0])
    pattern = one if period == 2 else np.kron(one, np.ones((2, 2))) + np.tile(one, (2, 2))
    pattern = pattern - pattern.mean()
    return pattern / np.abs(pattern).max()


def with_grid(image, amplitude, period):
    """`image` (h, w, 3) in [0, 1] plus the grid of `amplitude` (in [0, 1] units), rounded to 8 bits as a PNG."""
    pattern = overlap_pattern(period)
    h, w = image.shape[:2]
    grid = np.tile(pattern, (h // period + 1, w // period + 1))[:h, :w]
    return np.clip(np.round((image + amplitude * grid[..., None]) * 255) / 255, 0, 1)


def smooth_picture(size=128, seed=0, noise=1.5 / 255):
    """A smooth sky-like image: low-frequency colour waves plus a little sensor noise, 8-bit."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    base = 0.5 + 0.2 * np.sin(2 * np.pi * (x * rng.uniform(0.3, 1) + y * rng.uniform(0.3, 1)))
    image = base[..., None] * np.array([0.7, 0.8, 1.0]) + rng.normal(0, noise, (size, size, 3))
    return np.clip(np.round(image * 255) / 255, 0, 1)


def read_folder(folder):
    from utils.images import list_images, read_rgb
    return [read_rgb(path) / 255.0 for path in list_images(folder)]


@pytest.fixture(scope="module")
def real():
    """The real test paintings and photos of monet2photo shipped beside the repository."""
    if not SAMPLE.is_dir():
        pytest.skip(f"the real-sample fixtures ../{SAMPLE.relative_to(ROOT.parent)} are not here")
    return {"paintings": read_folder(SAMPLE / "testA"), "photos": read_folder(SAMPLE / "testB")}


# ---- synthetic cases -------------------------------------------------------------------------------

def test_a_smooth_picture_scores_low_and_the_same_with_a_faint_grid_far_above():
    for seed in range(3):
        image = smooth_picture(seed=seed)
        clean = cb.checkerboard_score(image)
        assert clean < REAL_LEVEL, seed
        for period in (2, 4):
            assert cb.checkerboard_score(with_grid(image, 2 / 255, period)) > clean + 1.0, (seed, period)


def test_white_noise_and_a_float_gradient_score_low():
    rng = np.random.default_rng(1)
    assert cb.checkerboard_score(rng.uniform(0, 1, (96, 96, 3))) < REAL_LEVEL
    gradient = np.broadcast_to(np.linspace(0.2, 0.8, 96)[None, :, None], (96, 96, 3))
    assert cb.checkerboard_score(gradient + rng.normal(0, 1 / 255, (96, 96, 3))) < REAL_LEVEL


def test_a_flat_image_scores_zero_but_a_grid_on_a_flat_area_counts():
    flat = np.full((64, 64, 3), 0.6)
    assert cb.tile_scores(flat).size == 0 and cb.checkerboard_score(flat) == 0.0
    assert cb.checkerboard_score(with_grid(flat, 2 / 255, 2)) > 1.5


def test_a_grid_beside_a_flat_white_background_is_found():
    """The attempt that scored only the smoothest tiles picked the flat white ones and found nothing."""
    image = smooth_picture(size=128, seed=3)
    image[:, :80] = 1.0                                   # a blank white background over most of the picture
    image[:, 80:] = with_grid(image[:, 80:], 3 / 255, 4)
    assert cb.checkerboard_score(image) > 1.0


def test_a_grid_on_a_smooth_corner_of_a_textured_picture_is_found():
    """A whole-image spectrum is drowned by the texture; the tiles' high quantile is not."""
    rng = np.random.default_rng(4)
    image = np.clip(0.5 + rng.normal(0, 0.15, (256, 256, 3)), 0, 1)   # texture everywhere ...
    image[:128, :128] = with_grid(smooth_picture(128, seed=5), 2 / 255, 2)   # ... but a gridded patch of sky
    assert cb.checkerboard_score(image) > 1.0
    whole = cb.tile_scores(image, tile=256)
    assert whole.shape == (1,) and whole[0] < REAL_LEVEL


def test_a_ripple_too_faint_for_8_bits_on_a_perfectly_smooth_picture_is_not_a_grid():
    """With no power at all around the frequencies, any trace would be a huge ratio: the noise floor stops it."""
    smooth = smooth_picture(128, seed=0, noise=0)                    # floats, not rounded: no noise at all
    ripple = (0.05 / 255) * np.tile([[1.0, -1.0], [-1.0, 1.0]], (64, 64))[..., None]
    assert cb.checkerboard_score(np.clip(smooth + ripple, 0, 1)) < REAL_LEVEL


def test_vertical_or_horizontal_lines_are_not_a_grid():
    """A fence or blinds: all the power on one axis of the spectrum; the axis frequencies are compared along it."""
    rng = np.random.default_rng(0)
    bars = np.broadcast_to(rng.uniform(0.3, 0.7, 128)[None, :, None], (128, 128, 3))
    bars = np.clip(np.round((bars + rng.normal(0, 1 / 255, (128, 128, 3))) * 255) / 255, 0, 1)
    for image in (bars, bars.transpose(1, 0, 2)):
        assert cb.checkerboard_score(image) < 0.5
        assert cb.checkerboard_score(with_grid(image, 3 / 255, 4)) > 1.2


def test_inputs_in_every_accepted_form_give_the_same_score():
    image = with_grid(smooth_picture(64, seed=6), 2 / 255, 2)
    score = cb.checkerboard_score(image)
    as_uint8 = np.round(image * 255).astype(np.uint8)
    assert cb.checkerboard_score(as_uint8) == pytest.approx(score, abs=1e-4)
    assert cb.checkerboard_score(image.astype(np.float32)) == pytest.approx(score, abs=1e-4)
    assert cb.image_scores(image).tolist() == pytest.approx([score])
    batch = np.stack([image, smooth_picture(64, seed=7)])
    assert cb.image_scores(batch)[0] == pytest.approx(score)
    mixed = [image, smooth_picture(100, seed=8)[:, :80]]     # a list of different sizes, one not square
    summary = cb.folder_summary(mixed)
    assert summary["n"] == 2 and summary["p90"] >= summary["median"]
    gray = cb.luminance(image)
    assert cb.checkerboard_score(gray) == pytest.approx(score) == cb.checkerboard_score(gray[..., None])


@pytest.mark.parametrize("bad, words", [
    (np.zeros((20, 64, 3)), "too small"),
    (np.full((64, 64, 3), 200.0), "give floats in [0, 1]"),
    (np.full((64, 64, 3), np.nan), "NaN"),
    (np.zeros((64, 64, 4)), "expected an image"),
])
def test_a_bad_image_is_a_clear_error(bad, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        cb.checkerboard_score(bad)


def test_a_huge_image_is_scored_a_row_of_tiles_at_a_time():
    """At 2,000 x 2,000 every tile at once would be 4 times the image in float64; a row of tiles is not."""
    import tracemalloc
    image = np.full((2000, 2000), 0.5, np.float32)
    image[::2, ::2] += 2 / 255
    tracemalloc.start()
    score = cb.checkerboard_score(image)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert score > 1.5 and peak < 80 * 2 ** 20, peak


# ---- real pictures ---------------------------------------------------------------------------------

def test_real_photos_and_real_paintings_score_about_the_same_low_level(real):
    figures = {name: cb.folder_summary(images) for name, images in real.items()}
    for name, s in figures.items():
        assert s["n"] == 8 and s["median"] < REAL_LEVEL and s["p90"] < REAL_LEVEL, (name, s)
    assert abs(figures["paintings"]["median"] - figures["photos"]["median"]) < 0.1, figures


@pytest.mark.parametrize("period", [2, 4])
def test_the_same_real_images_with_a_faint_grid_score_far_above(real, period):
    for name, images in real.items():
        clean = cb.image_scores(images)
        gridded = cb.image_scores([with_grid(image, 3 / 255, period) for image in images])
        assert np.all(gridded > clean + 0.15), (name, clean, gridded)
        assert np.median(gridded) > np.quantile(clean, 0.9) + FAR_ABOVE, (name, clean, gridded)


def test_a_grid_on_the_fixture_photos_shipped_in_the_repository():
    """The same on tests/fixtures/real_mini, which every clone has."""
    images = read_folder(FIXTURES / "trainB") + read_folder(FIXTURES / "testA")
    clean = cb.image_scores(images)
    gridded = cb.image_scores([with_grid(image, 3 / 255, 4) for image in images])
    assert np.all(clean < REAL_LEVEL) and np.all(gridded > clean + 0.3), (clean, gridded)


def test_the_shipped_monet_models_translations_score_far_above_the_real_images(real):
    """pretrained/monet2photo_256 both ways, on 128 x 128 crops of real pictures at their own size (fast)."""
    from utils.inference.trained_model import load_generators
    from utils.inference.translation import translate_image

    model = load_generators(ROOT / "pretrained" / "monet2photo_256")
    for name, direction in (("photos", "BtoA"), ("paintings", "AtoB")):
        crops = [np.round(image[64:192, 64:192] * 255).astype(np.uint8) for image in real[name][:3]]
        translated = cb.image_scores([translate_image(model, crop, direction) for crop in crops])
        clean = cb.image_scores(crops)
        assert np.median(translated) > np.quantile(clean, 0.9) + FAR_ABOVE, (direction, clean, translated)
        assert np.all(translated > clean.max()), (direction, clean, translated)


def test_a_folder_of_pngs_scores_as_the_arrays_it_holds(tmp_path):
    images = [with_grid(smooth_picture(64, seed=s), 2 / 255, 2) for s in range(3)] + [smooth_picture(64, seed=9)]
    for i, image in enumerate(images):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / f"{i}.png")
    from_files = cb.folder_summary(tmp_path)
    assert from_files == pytest.approx(cb.folder_summary(np.stack(images)))
    assert from_files["n"] == 4 and from_files["median"] > 1.0


# ---- the command line ------------------------------------------------------------------------------

def test_the_command_prints_one_line_a_folder(tmp_path, capsys):
    for name, grid in (("clean", False), ("grid", True)):
        (tmp_path / name).mkdir()
        image = smooth_picture(64, seed=1)
        image = with_grid(image, 2 / 255, 2) if grid else image
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / name / "a.png")
    (tmp_path / "grid" / "broken.png").write_bytes(b"not a png")
    cb.main([str(tmp_path / "clean"), str(tmp_path / "grid")])
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(tmp_path / "clean")) and "(1 images)" in lines[1]
    medians = [float(line.split("median ")[1].split(",")[0]) for line in lines]
    assert medians[0] < REAL_LEVEL and medians[1] > 1.0
    assert "broken.png" in captured.err and "skipped" in captured.err


@pytest.mark.parametrize("case", ["missing", "empty", "a file"])
def test_the_command_refuses_a_missing_or_empty_folder_in_one_line(tmp_path, case):
    target = tmp_path / "folder"
    if case == "empty":
        target.mkdir()
        (target / "notes.txt").write_text("no images here")
    elif case == "a file":
        target.write_text("x")
    done = subprocess.run([sys.executable, "-m", "utils.evaluation.checkerboard", str(target)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and str(target) in lines[0], done.stderr


# ---- the evaluation reports it ---------------------------------------------------------------------

class NoJudge:
    """A scorer whose judge is unusable (its rates withheld) and with no KID: only the other figures."""
    judge, accuracy = None, {"usable": False}

    def kids(self, translated, target):
        return {"kid_judge": None, "kid_inception": None}


def test_score_translator_reports_the_checkerboard_of_each_direction():
    from utils.evaluation.unpaired import score_translator

    test = {"A": np.stack([smooth_picture(64, seed=s) for s in range(4)]),
            "B": np.stack([smooth_picture(64, seed=10 + s) for s in range(4)])}
    gridded = score_translator(lambda images, direction: np.stack([with_grid(x, 2 / 255, 4) for x in images]),
                               test, NoJudge())
    identity = score_translator(lambda images, direction: images, test, NoJudge())
    for direction in ("AtoB", "BtoA"):
        assert set(gridded[direction]["checkerboard"]) == {"median", "p90", "n"}
        assert gridded[direction]["checkerboard"]["median"] > identity[direction]["checkerboard"]["p90"] + 1.0
    tiny = score_translator(lambda images, direction: images, {d: x[:, :16, :16] for d, x in test.items()}, NoJudge())
    assert tiny["AtoB"]["checkerboard"] is None       # too small to score: none, not an error


def test_the_results_table_and_page_show_it_with_the_real_images_level(tmp_path):
    from utils.evaluation.unpaired import format_table
    from utils.training.page import evaluation_section

    scores = {"judged_target": 0.5, "mean_p_target": 0.5, "kid_judge": [0.01, 0.002], "kid_inception": None,
              "cycle_error": 0.05, "checkerboard": {"median": 1.234, "p90": 1.5, "n": 8}}
    results = {"dataset": "blobs", "image_size": 64, "n_test": {"A": 8, "B": 8},
               "judge": {"accuracy_on_real_test": {"A": 0.9, "B": 0.9, "usable": True}},
               "checkerboard_real": {"A": {"median": 0.14, "p90": 0.18, "n": 8},
                                     "B": {"median": 0.12, "p90": 0.16, "n": 8}},
               "methods": {"CycleGAN": {"AtoB": scores, "BtoA": scores}}}
    table = format_table(results)
    assert "checkerboard median / p90" in table and "| 1.23 / 1.50 |" in table
    assert "real test images score A 0.14 / 0.18, B 0.12 / 0.16" in table
    (tmp_path / "evaluation.json").write_text(json.dumps(results))
    page = "\n".join(evaluation_section(tmp_path))
    assert "1.23 / 1.50" in page and "A 0.14 / 0.18" in page
    # An evaluation.json written before the score existed still shows, with '-' in its place.
    old = {**results, "methods": {"CycleGAN": {d: {k: v for k, v in scores.items() if k != "checkerboard"}
                                              for d in ("AtoB", "BtoA")}}}
    del old["checkerboard_real"]
    table = format_table(old)
    assert "| 0.050 | - |" in table and "real test images score" not in table


def test_the_command_scores_a_models_translations_and_keeps_its_figures_in_a_json(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for s in range(2):
        Image.fromarray(np.round(smooth_picture(64, seed=s) * 255).astype(np.uint8)).save(folder / f"{s}.png")
    record = tmp_path / "figures.json"
    cb.main([str(folder), "--json-out", str(record)])
    model = str(ROOT / "pretrained" / "synthetic_apple2orange_64")
    cb.main([str(folder), "--model", model, "--direction", "AtoB", "--json-out", str(record)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and f"translated AtoB by {model}" in lines[1]
    figures = json.loads(record.read_text())["figures"]
    assert list(figures) == [str(folder), f"{folder} translated AtoB by {model}"]   # the second kept the first
    assert figures[str(folder)]["n"] == 2 and "--json-out" in figures[str(folder)]["command"]
    assert figures[str(folder)]["median"] < REAL_LEVEL


@pytest.mark.parametrize("args, words", [
    (["--model", "pretrained/synthetic_apple2orange_64"], "--model and --direction go together"),
    (["--model", "nowhere", "--direction", "AtoB"], "not a model or run folder"),
])
def test_the_command_refuses_a_bad_model_argument(tmp_path, capsys, args, words):
    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    with pytest.raises(SystemExit) as exit_info:
        cb.main([str(tmp_path / "in"), *args])
    assert exit_info.value.code == 2 and words in capsys.readouterr().err


@pytest.mark.parametrize("content", ["[1]", "not json", None])
def test_the_command_will_not_overwrite_a_json_it_did_not_write(tmp_path, content):
    from utils.cli import run_main

    (tmp_path / "in").mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in" / "a.png")
    target = tmp_path / "other.json"
    if content is None:
        target.mkdir()               # a folder where the file should go
    else:
        target.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        run_main(cb.main, [str(tmp_path / "in"), "--json-out", str(target)])
    assert exit_info.value.code == 2
    assert content is None or target.read_text() == content
