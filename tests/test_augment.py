"""DiffAugment (models/augment.py): shapes and range, identity when off or not training, what each
operation does, gradients through it, and a CycleGAN that trains with it and freezes what it should."""

import keras
import numpy as np
import pytest

from models import CycleGAN, CycleGANConfig, build_patchgan_discriminator
from models.augment import DiffAugment
from models.config import DIFF_AUGMENT_PAPER
from utils.training import checkpoint
from test_cyclegan import changed, snapshot   # which networks' weights moved
from test_networks import gradient   # d sum(fn(x) * weights) / dx with the backend's own autodiff

SIZE = 32
SHIFT = 4     # int(32 / 8 + 0.5): the largest translation of a 32 px image
SIDE = 16     # int(32 / 2 + 0.5): the side of the cut-out square


def images(seed, n=4, channels=3):
    return np.random.default_rng(seed).uniform(-1, 1, (n, SIZE, SIZE, channels)).astype("float32")


def augmented(policy, x, seed=0, training=True):
    return keras.ops.convert_to_numpy(DiffAugment(policy, seed=seed)(x, training=training))


def test_policy_is_checked_and_kept_in_one_spelling():
    assert CycleGANConfig().diff_augment == ""
    assert CycleGANConfig(diff_augment=" cutout, color ").diff_augment == "color,cutout"   # applied in this order
    assert DiffAugment("translation,color").operations == ("color", "translation")
    for bad in ("flip", "color,color", 1):
        with pytest.raises(ValueError, match="diff_augment=.*'color', 'translation', 'cutout'|must be a string"):
            CycleGANConfig(diff_augment=bad)


def test_output_has_the_input_shape_and_a_bounded_range():
    x = images(0, n=8)
    y = augmented(DIFF_AUGMENT_PAPER, x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    # colour may leave [-1, 1], as the paper's code (no clipping): brightness +-0.5, saturation x < 2 and
    # contrast x < 1.5 keep |value| <= 6 for inputs in [-1, 1]
    assert np.abs(y).max() <= 6
    # translation and cutout only move pixels or set them to 0
    moved = augmented("translation,cutout", x)
    assert np.isin(moved, np.append(x, 0)).all()
    gray = augmented(DIFF_AUGMENT_PAPER, images(1, channels=1))
    assert gray.shape == (4, SIZE, SIZE, 1) and np.all(np.isfinite(gray))


def test_identity_when_off_or_not_training():
    x = images(2)
    np.testing.assert_array_equal(augmented("", x), x)
    np.testing.assert_array_equal(augmented(DIFF_AUGMENT_PAPER, x, training=False), x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(DiffAugment(DIFF_AUGMENT_PAPER)(x)), x)  # default


def test_color_changes_each_image_by_its_own_draws():
    x = images(3)
    y = augmented("color", x)
    assert not np.allclose(y, x)
    # brightness adds one number per image: the per-image mean moves by different amounts
    assert np.ptp((y - x).mean(axis=(1, 2, 3))) > 1e-3


def shifted(img, dy, dx):
    """img moved down by dy and right by dx, zero fill (numpy reference)."""
    out = np.zeros_like(img)
    h, w = img.shape[:2]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[max(-dy, 0):h - max(dy, 0),
                                                                    max(-dx, 0):w - max(dx, 0)]
    return out


def test_translation_shifts_each_image_by_at_most_an_eighth_with_zero_fill():
    x = images(4, n=6)
    y = augmented("translation", x)
    assert not np.array_equal(y, x)
    for img, out in zip(x, y):
        matches = [(dy, dx) for dy in range(-SHIFT, SHIFT + 1) for dx in range(-SHIFT, SHIFT + 1)
                   if np.array_equal(shifted(img, dy, dx), out)]
        assert len(matches) == 1


def test_cutout_zeroes_one_square_of_half_the_side():
    x = images(5, n=6) * 0.5 + 0.75          # in [0.25, 1.25]: no pixel is 0 before the cutout
    y = augmented("cutout", x)
    for img, out in zip(x, y):
        zero = (out == 0).all(axis=-1)
        rows, cols = np.nonzero(zero.any(axis=1))[0], np.nonzero(zero.any(axis=0))[0]
        assert SIDE // 2 <= len(rows) <= SIDE and SIDE // 2 <= len(cols) <= SIDE   # clipped at the border
        box = np.zeros_like(zero)
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
        np.testing.assert_array_equal(zero, box)                                   # one rectangle
        np.testing.assert_array_equal(out[~zero], img[~zero])                      # the rest untouched


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", DIFF_AUGMENT_PAPER])
def test_gradients_flow_through_to_the_input(policy):
    layer = DiffAugment(policy, seed=1)
    grad = gradient(lambda v: layer(v, training=True), images(6))
    assert grad.shape == (4, SIZE, SIZE, 3) and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_a_discriminator_with_it_predicts_as_the_plain_one():
    """Same weights, same parameter count; predict (training=False) is the plain network's."""
    plain = build_patchgan_discriminator((SIZE, SIZE, 3), 4)
    augmenting = build_patchgan_discriminator((SIZE, SIZE, 3), 4, diff_augment=DIFF_AUGMENT_PAPER)
    assert augmenting.count_params() == plain.count_params()
    assert isinstance(augmenting.layers[1], DiffAugment) and not any(isinstance(layer, DiffAugment)
                                                                     for layer in plain.layers)
    augmenting.set_weights(plain.get_weights())
    x = images(7)
    np.testing.assert_allclose(augmenting.predict(x, verbose=0), plain.predict(x, verbose=0), atol=1e-6)
    trained = keras.ops.convert_to_numpy(augmenting(x, training=True))
    assert not np.allclose(trained, plain.predict(x, verbose=0), atol=1e-4)


@pytest.fixture(scope="module")
def gan():
    return CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, seed=3, diff_augment=DIFF_AUGMENT_PAPER)


def test_training_with_it_moves_the_right_networks_and_the_generators_see_augmented_scores(gan):
    a, b = images(8, n=1), images(9, n=1)
    before = snapshot(gan)
    losses = gan.train_step(a, b)
    assert all(np.isfinite(value) for value in losses.values())
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA", "d_A", "d_B"}

    valid = np.ones((1,) + gan.disc_patch, "float32")
    before = snapshot(gan)
    gan.combined.train_on_batch([a, b], [valid, valid, a, b, a, b])
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA"}   # the augmentation's seed state is no weight
    before = snapshot(gan)
    gan.d_A.train_on_batch(np.concatenate([a, gan.translate(b, "BtoA")]), np.concatenate([valid, 0 * valid]))
    assert changed(before, snapshot(gan)) == {"d_A"}

    # In a training step the combined model scores augmented fakes; in inference the plain ones.
    def numpy(tensor):
        return keras.ops.convert_to_numpy(tensor)

    outputs = gan.combined({"img_A": a, "img_B": b}, training=True)
    plain_score = numpy(gan.d_A(outputs["fake_A"], training=False))
    assert not np.allclose(numpy(outputs["valid_A"]), plain_score, atol=1e-5)
    np.testing.assert_allclose(numpy(gan.combined({"img_A": a, "img_B": b})["valid_A"]),
                               numpy(gan.d_A(gan.translate(b, "BtoA"))), atol=1e-5)


def test_a_checkpoint_keeps_the_choice_and_a_model_without_it_refuses_the_checkpoint(gan, tmp_path):
    path = checkpoint.save(gan, tmp_path / "weights")
    resumed = checkpoint.restore(path)
    assert resumed.config.diff_augment == DIFF_AUGMENT_PAPER and isinstance(resumed.d_A.layers[1], DiffAugment)
    for name in ("d_A", "g_AB"):
        for ours, theirs in zip(getattr(gan, name).weights, getattr(resumed, name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    with pytest.raises(ValueError, match="diff_augment"):
        checkpoint.load(CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, seed=3), path)
