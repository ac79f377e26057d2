"""models/losses.py: each of the paper's losses against its formula in numpy, on made-up scores and images."""

import numpy as np
import pytest
from keras import ops

from models.losses import (FAKE, REAL, adversarial_loss, cycle_loss, discriminator_loss,
                           discriminator_loss_per_image, generator_loss, identity_loss)

rng = np.random.default_rng(0)


def value(x):
    return float(ops.convert_to_numpy(x))


def test_the_three_terms_are_least_squares_and_l1():
    scores, a, b = rng.normal(size=(2, 4, 4, 1)), rng.uniform(-1, 1, (2, 8, 8, 3)), rng.uniform(-1, 1, (2, 8, 8, 3))
    assert value(adversarial_loss(scores, np.ones_like(scores))) == pytest.approx(np.mean((scores - 1) ** 2), rel=1e-5)
    assert value(cycle_loss(a, b)) == pytest.approx(np.mean(np.abs(a - b)), rel=1e-5)
    assert value(identity_loss(a, b)) == pytest.approx(np.mean(np.abs(a - b)), rel=1e-5)
    assert value(cycle_loss(a.astype("float16"), a)) == pytest.approx(0, abs=1e-3)   # float32 under mixed precision


@pytest.mark.parametrize("with_identity", [True, False])
def test_generator_loss_is_eq_3_with_the_identity_term(with_identity):
    names = ["valid_A", "valid_B", "reconstr_A", "reconstr_B"] + (["id_A", "id_B"] if with_identity else [])
    outputs = {n: rng.normal(size=(1, 4, 4, 3)) for n in names}
    targets = {n: rng.normal(size=(1, 4, 4, 3)) for n in ["valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B"]}
    weights = {"valid_A": 1.0, "valid_B": 1.0, "reconstr_A": 10.0, "reconstr_B": 10.0, "id_A": 5.0, "id_B": 5.0}
    total, terms = generator_loss(targets, outputs, weights)
    expected = {n: np.mean((outputs[n] - targets[n]) ** 2) if n.startswith("valid") else np.mean(np.abs(outputs[n] - targets[n]))
                for n in names}
    assert set(terms) == set(names)
    for n in names:
        assert value(terms[n]) == pytest.approx(expected[n], rel=1e-5), n
    assert value(total) == pytest.approx(sum(weights[n] * expected[n] for n in names), rel=1e-5)


def test_discriminator_loss_halves_real_plus_fake_and_its_keras_form_averages_to_it_whatever_the_mix():
    real, fake = rng.normal(size=(3, 4, 4, 1)), rng.normal(size=(1, 4, 4, 1))   # 3 reals, 1 fake: unequal
    half = 0.5 * (np.mean((real - 1) ** 2) + np.mean(fake ** 2))
    assert value(discriminator_loss(real, fake)) == pytest.approx(half, rel=1e-5)

    def keras_mean(targets, scores):   # Keras' reduction of the per-image values: their batch mean
        per_image = ops.convert_to_numpy(discriminator_loss_per_image(targets, scores))
        assert per_image.shape == (len(scores),)
        return float(per_image.mean())

    scores = np.concatenate([real, fake])
    targets = np.concatenate([np.full_like(real, REAL), np.full_like(fake, FAKE)])
    assert keras_mean(targets, scores) == pytest.approx(half, rel=1e-5)
    order = rng.permutation(len(scores))
    assert keras_mean(targets[order], scores[order]) == pytest.approx(half, rel=1e-5)
    # one kind only (the book's separate calls): that kind's mean squared error
    assert keras_mean(np.ones_like(real), real) == pytest.approx(np.mean((real - 1) ** 2), rel=1e-5)
    assert keras_mean(np.zeros_like(fake), fake) == pytest.approx(np.mean(fake ** 2), rel=1e-5)
    # as many reals as fakes (train_step): the mean squared error over the batch, Keras' "mse"
    even, even_targets = np.concatenate([real[:1], fake]), targets[2:]
    assert keras_mean(even_targets, even) == pytest.approx(np.mean((even - even_targets) ** 2), rel=1e-5)
