"""Each metric on hand-made images whose answer is known, and the baselines on a tiny paired set.

The scene: a brown shelf gradient with a disc of fruit in the middle; domain A's fruit is red,
domain B's is orange, the background is the same in both (as in the synthetic datasets).
"""

import numpy as np
import pytest
from skimage import color

from utils.evaluation import baselines, paired
from utils.evaluation.paired import (background_change, evaluate_translator, hue_distance, hue_error, masked_l1, mean_hue,
                              paired_l1, psnr, ssim)

SIZE = 32


def disc_mask(size=SIZE, radius=9, centre=None):
    y, x = np.mgrid[:size, :size]
    cy, cx = centre if centre is not None else (size / 2, size / 2)
    return (y - cy) ** 2 + (x - cx) ** 2 <= radius ** 2


def scene(fruit_rgb, mask):
    """A shelf-like brown gradient (darker at the top) with a fruit of colour `fruit_rgb` under the mask."""
    y = np.linspace(0, 1, mask.shape[0])[:, None, None]
    image = np.broadcast_to(np.array([0.45, 0.35, 0.25]) * (0.7 + 0.3 * y), mask.shape + (3,)).copy()
    image[mask] = fruit_rgb
    return image


def shift_hue(image, mask, degrees):
    """Rotate the hue of the masked pixels by `degrees`, keeping saturation and value."""
    hsv = color.rgb2hsv(image)
    hsv[..., 0][mask] = (hsv[..., 0][mask] + degrees / 360) % 1
    return color.hsv2rgb(hsv)


@pytest.fixture
def pair():
    mask = disc_mask()
    return scene([0.8, 0.1, 0.1], mask), scene([0.95, 0.55, 0.1], mask), mask


def test_identity_translation_has_zero_l1_and_zero_background_change(pair):
    image_A, _, mask = pair
    assert paired_l1(image_A, image_A) == 0
    assert background_change(image_A, image_A, mask) == 0
    assert psnr(image_A, image_A) == np.inf
    assert ssim(image_A, image_A) == pytest.approx(1.0)


def test_l1_of_a_known_offset():
    a = np.full((2, 8, 8, 3), 0.25)
    assert paired_l1(a + 0.25, a) == pytest.approx(0.25)
    b = a.copy()
    b[0, :4] = 1.25  # half the pixels of one of two images off by 1: a quarter of the pixels
    assert paired_l1(b, a) == pytest.approx(0.25)


def test_background_change_counts_only_the_background(pair):
    image_A, image_B, mask = pair
    # Translating only the fruit (the ideal CycleGAN) leaves the background untouched.
    assert background_change(image_A, image_B, mask) == pytest.approx(0.0)
    brighter = image_A + 0.1 * ~mask[..., None]
    assert background_change(image_A, brighter, mask) == pytest.approx(0.1)
    # A batch of two: one image unchanged, one changed by 0.2 everywhere -> mean 0.1.
    batch_in = np.stack([image_A, image_A])
    batch_out = np.stack([image_A, image_A + 0.2])
    assert background_change(batch_in, batch_out, np.stack([mask, mask])) == pytest.approx(0.1)


def test_fruit_l1_counts_only_the_fruit(pair):
    image_A, image_B, mask = pair
    # Doing nothing: the whole error sits on the fruit, and there it is the colour difference.
    expected = np.abs(image_A - image_B)[mask].mean()
    assert expected > 0.1
    assert masked_l1(image_A, image_B, mask) == pytest.approx(expected)
    assert paired_l1(image_A, image_B) == pytest.approx(expected * mask.mean())
    # A background change does not move it.
    assert masked_l1(image_A + 0.3 * ~mask[..., None], image_B, mask) == pytest.approx(expected)
    with pytest.raises(ValueError, match="masks are empty"):
        masked_l1(image_A, image_B, np.zeros_like(mask))


@pytest.mark.parametrize("degrees", [15, 40, -30, 120])
def test_known_hue_shift_gives_its_hue_error(pair, degrees):
    image_A, _, mask = pair
    shifted = shift_hue(image_A, mask, degrees)
    assert hue_error(shifted, image_A, mask) == pytest.approx(abs(degrees), abs=1e-6)
    # The background keeps its hue: the metric looks only inside the mask.
    assert hue_error(shift_hue(image_A, ~mask, degrees), image_A, mask) == pytest.approx(0, abs=1e-6)


def test_red_apple_and_orange_are_the_expected_hues_apart(pair):
    image_A, image_B, mask = pair
    hue_A, hue_B = mean_hue(image_A, mask), mean_hue(image_B, mask)
    assert hue_A == pytest.approx(0.0, abs=1e-6)  # pure red with equal G and B: hue 0
    assert hue_B == pytest.approx(360 * color.rgb2hsv(np.array([[[0.95, 0.55, 0.1]]]))[0, 0, 0], abs=1e-6)
    assert hue_error(image_B, image_A, mask) == pytest.approx(hue_B, abs=1e-6)


def test_hue_is_circular():
    assert hue_distance(350, 10) == 20
    assert hue_distance(10, 350) == 20
    assert hue_distance(0, 180) == 180
    assert hue_distance(90, 450) == 0
    # Two pixels of hues 350 and 10: the circular mean is 0, the arithmetic one would be 180.
    image = color.hsv2rgb(np.array([[[350 / 360, 1, 1], [10 / 360, 1, 1]]]))
    assert mean_hue(image, np.ones((1, 2), bool)) == pytest.approx(0, abs=1e-6) or \
        mean_hue(image, np.ones((1, 2), bool)) == pytest.approx(360, abs=1e-6)


def test_grey_pixels_do_not_pull_the_mean_hue():
    image = np.full((4, 4, 3), 0.5)
    image[0, 0] = [0.0, 0.8, 0.0]  # one green pixel among greys: hue 120
    assert mean_hue(image, np.ones((4, 4), bool)) == pytest.approx(120, abs=1e-6)
    assert np.isnan(mean_hue(np.full((4, 4, 3), 0.5), np.ones((4, 4), bool)))


def test_psnr_of_a_known_error_and_ssim_falls_with_noise(pair):
    image_A, _, _ = pair
    off = np.clip(image_A + 0.1, 0, 1)
    mse = np.mean((off - image_A) ** 2)
    assert psnr(off, image_A) == pytest.approx(10 * np.log10(1 / mse))
    assert psnr(np.full((8, 8, 3), 0.6), np.full((8, 8, 3), 0.5)) == pytest.approx(20.0)
    rng = np.random.default_rng(0)
    noisy = [np.clip(image_A + rng.normal(0, s, image_A.shape), 0, 1) for s in (0.02, 0.1, 0.3)]
    scores = [ssim(n, image_A) for n in noisy]
    assert 1 > scores[0] > scores[1] > scores[2]


def test_bad_shapes_and_empty_background_are_errors(pair):
    image_A, _, mask = pair
    with pytest.raises(ValueError, match="shape"):
        paired_l1(image_A, image_A[:16])
    with pytest.raises(ValueError, match="background"):
        background_change(image_A, image_A, np.ones_like(mask))
    with pytest.raises(ValueError, match="masks"):
        background_change(np.stack([image_A] * 2), np.stack([image_A] * 2), np.stack([mask] * 3))


# ----------------------------------------------------------------- translators and baselines
def tiny_paired_set(n=3, seed=0):
    """n paired scenes with the fruit at different places: {"A", "B", "mask"} as load_test_set returns."""
    rng = np.random.default_rng(seed)
    masks = np.stack([disc_mask(radius=rng.integers(6, 10), centre=rng.uniform(10, 22, 2)) for _ in range(n)])
    A = np.stack([scene([0.8, 0.1, 0.1], m) for m in masks])
    B = np.stack([scene([0.95, 0.55, 0.1], m) for m in masks])
    return {"names": [f"{i}.png" for i in range(n)], "A": A, "B": B, "mask": masks}


def test_identity_baseline_scores_the_untranslated_input():
    test_set = tiny_paired_set()
    results = evaluate_translator(baselines.identity_translator, test_set)
    assert set(results) == {"AtoB", "BtoA"}
    for direction, (source, target) in {"AtoB": ("A", "B"), "BtoA": ("B", "A")}.items():
        scores = results[direction]
        assert set(scores) == set(paired.METRICS)
        assert scores["paired_l1"] == pytest.approx(paired_l1(test_set[source], test_set[target]))
        assert scores["background_change"] == 0 and scores["cycle_error"] == 0
        assert scores["hue_error"] == pytest.approx(hue_error(test_set["B"], test_set["A"], test_set["mask"]))


def test_perfect_translator_scores_zero():
    test_set = tiny_paired_set()

    def oracle(images, direction):  # knows the answer: swaps each image for its pair
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        index = [next(i for i, s in enumerate(test_set[source]) if np.array_equal(s, image)) for image in images]
        return test_set[target][index]

    for scores in evaluate_translator(oracle, test_set).values():
        assert scores["paired_l1"] == 0 and scores["hue_error"] == pytest.approx(0, abs=1e-6)
        assert scores["background_change"] == pytest.approx(0) and scores["cycle_error"] == 0


def test_baselines_keep_shapes_and_range_and_move_colours_to_the_target():
    test_set = tiny_paired_set()
    train = tiny_paired_set(n=4, seed=1)
    translators = baselines.baseline_translators(train["A"], train["B"])
    assert list(translators) == ["identity", "histogram matching", "colour transfer"]
    for name, translate in translators.items():
        out = translate(test_set["A"], "AtoB")
        assert out.shape == test_set["A"].shape, name
        assert out.min() >= 0 and out.max() <= 1, name
    for name in ("histogram matching", "colour transfer"):
        scores = evaluate_translator(translators[name], test_set)
        identity = evaluate_translator(translators["identity"], test_set)
        for direction in ("AtoB", "BtoA"):  # red <-> orange: matching colours makes the hue closer
            assert scores[direction]["hue_error"] < identity[direction]["hue_error"], (name, direction)


def test_histogram_matching_to_an_image_itself_is_the_identity():
    test_set = tiny_paired_set(n=1)
    matcher = baselines.HistogramMatcher(test_set["A"], test_set["B"])
    np.testing.assert_allclose(matcher(test_set["B"], "AtoB"), test_set["B"], atol=1e-12)


def test_histogram_matching_gives_skimages_images_with_the_reference_sorted_once():
    from skimage import exposure

    rng = np.random.default_rng(0)
    train_A = np.round(rng.uniform(0, 1, (3, 12, 10, 3)) * 255) / 255        # 8-bit levels, as loaded photos
    train_B = rng.beta(2, 5, (2, 12, 10, 3))                                 # and arbitrary floats
    images = np.concatenate([np.round(rng.uniform(0.2, 0.9, (2, 9, 7, 3)) * 255) / 255,
                             rng.uniform(0, 1, (2, 9, 7, 3))])
    matcher = baselines.HistogramMatcher(train_A, train_B)
    for direction, reference in (("AtoB", train_B), ("BtoA", train_A)):
        pooled = reference.reshape(-1, reference.shape[2], 3)
        expected = np.stack([exposure.match_histograms(image, pooled, channel_axis=-1) for image in images])
        out = matcher(images, direction)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
        assert not np.allclose(out, images)


def test_colour_transfer_gives_the_target_lab_mean_and_std():
    rng = np.random.default_rng(0)
    source = rng.uniform(0.3, 0.6, (1, 16, 16, 3))
    target = rng.uniform(0.35, 0.55, (2, 16, 16, 3))
    out = baselines.ColourTransfer(target, source)(source, "BtoA")  # BtoA: the "A" training set is the target
    lab, target_lab = color.rgb2lab(out[0]), color.rgb2lab(target.reshape(-1, 16, 3))
    np.testing.assert_allclose(lab.mean(axis=(0, 1)), target_lab.mean(axis=(0, 1)), atol=0.05)
    np.testing.assert_allclose(lab.std(axis=(0, 1)), target_lab.std(axis=(0, 1)), atol=0.05)


def test_model_translator_maps_between_unit_and_model_range():
    import keras

    class Echo:  # a stand-in CycleGAN whose generators return their input, in [-1, 1]
        g_AB = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Lambda(lambda x: x)])
        g_BA = g_AB

    test_set = tiny_paired_set()
    out = baselines.model_translator(Echo())(test_set["A"], "AtoB")
    np.testing.assert_allclose(out, test_set["A"], atol=1e-6)


def test_a_real_cyclegan_is_scored_on_every_metric():
    from models import CycleGAN

    gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4)
    results = evaluate_translator(baselines.model_translator(gan), tiny_paired_set(n=2))
    for direction in ("AtoB", "BtoA"):
        assert set(results[direction]) == set(paired.METRICS)
        assert all(np.isfinite(v) for v in results[direction].values())
        assert results[direction]["cycle_error"] > 0  # an untrained network does not reconstruct


def test_a_style_dataset_without_background_reports_no_background_change(pair):
    from utils.evaluation.paired import translation_metrics
    image_A, image_B, mask = pair
    full = np.ones_like(mask)
    metrics = translation_metrics(image_A[None], image_B[None], image_B[None], full[None], image_A[None])
    assert np.isnan(metrics["background_change"])
    assert metrics["paired_l1"] == 0
