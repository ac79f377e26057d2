"""utils/evaluation/hue.py: greens that stay green score 1, greens turned red-brown score 0."""

import numpy as np
import pytest
from skimage.color import hsv2rgb

from utils.evaluation.hue import green_kept, mean_hue, green_mask


def picture(hue_degrees, saturation=0.6, value=0.6, size=16):
    hsv = np.zeros((1, size, size, 3))
    hsv[..., 0], hsv[..., 1], hsv[..., 2] = hue_degrees / 360, saturation, value
    return hsv2rgb(hsv)


def test_a_meadow_kept_green_scores_one_and_turned_red_brown_scores_zero():
    meadow = picture(110)
    assert green_kept(meadow, meadow) == {"green_pixels": 1.0, "mean_hue_before": pytest.approx(110),
                                          "mean_hue_after": pytest.approx(110), "kept_green": 1.0}
    swapped = green_kept(meadow, picture(20))   # the hue swap: red-brown
    assert swapped["kept_green"] == 0.0 and swapped["mean_hue_after"] == pytest.approx(20)


def test_only_saturated_bright_green_counts_and_the_mean_hue_is_circular():
    half = np.concatenate([picture(110), picture(110, saturation=0.05)], axis=1)   # top green, bottom grey
    assert green_mask(half).mean() == 0.5
    assert green_kept(half, half)["green_pixels"] == 0.5
    reds = np.concatenate([picture(350), picture(10)], axis=1)
    assert mean_hue(reds, np.ones(reds.shape[:3], bool)) == pytest.approx(0, abs=1e-6) or \
        mean_hue(reds, np.ones(reds.shape[:3], bool)) == pytest.approx(360, abs=1e-6)
    assert green_kept(picture(0), picture(0))["kept_green"] is None   # no green to keep
    with pytest.raises(ValueError, match="same shape"):
        green_kept(picture(110), picture(110, size=8))
