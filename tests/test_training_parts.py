"""Paper details the book leaves out: the history pool of fakes and the learning-rate schedule."""

import numpy as np
import pytest

from models.image_pool import ImagePool
from models.lr_schedule import learning_rate_at


def images(n, value=None, seed=0):
    rng = np.random.default_rng(seed)
    if value is None:
        return rng.uniform(-1, 1, (n, 4, 4, 3)).astype("float32")
    return np.full((n, 4, 4, 3), value, np.float32)


def test_pool_returns_new_images_until_full_then_mixes_history():
    pool = ImagePool(max_size=50, seed=0)
    for i in range(50):
        np.testing.assert_array_equal(pool.query(images(1, value=i)), images(1, value=i))
    assert len(pool) == 50
    returned = np.array([pool.query(images(1, value=1000 + i))[0, 0, 0, 0] for i in range(400)])
    from_history = returned != 1000 + np.arange(400)
    assert 0.4 < from_history.mean() < 0.6          # probability 1/2
    assert len(pool) == 50                           # never grows past max_size
    # a returned history image has been replaced by the new one: the pool now holds newer values
    assert sum(float(img[0, 0, 0]) >= 1000 for img in pool.images) > 25


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_pool_works_for_any_batch_size(batch_size):
    pool = ImagePool(max_size=5, seed=1)
    for step in range(10):
        out = pool.query(images(batch_size, seed=step))
        assert out.shape == (batch_size, 4, 4, 3)
    assert len(pool) == 5


def test_pool_of_size_zero_passes_images_through():
    pool = ImagePool(max_size=0)
    x = images(4)
    np.testing.assert_array_equal(pool.query(x), x)
    assert len(pool) == 0


def test_pool_state_round_trip_gives_the_same_future():
    pool = ImagePool(max_size=3, seed=2)
    for step in range(5):
        pool.query(images(2, seed=step))
    stored, rng_state = pool.get_state()
    clone = ImagePool(max_size=3, seed=99)
    clone.set_state(stored, rng_state)
    for step in range(5, 10):
        np.testing.assert_array_equal(pool.query(images(2, seed=step)), clone.query(images(2, seed=step)))


def test_learning_rate_is_constant_then_decays_linearly_to_zero():
    base, epochs, decay = 2e-4, 100, 100
    assert learning_rate_at(0, base, epochs, decay) == base
    assert learning_rate_at(99.5, base, epochs, decay) == base
    assert learning_rate_at(100, base, epochs, decay) == base
    assert learning_rate_at(150, base, epochs, decay) == pytest.approx(base / 2)
    assert learning_rate_at(175, base, epochs, decay) == pytest.approx(base / 4)
    assert learning_rate_at(200, base, epochs, decay) == 0
    assert learning_rate_at(250, base, epochs, decay) == 0
    assert learning_rate_at(500, base, epochs, 0) == base   # no decay phase: constant
