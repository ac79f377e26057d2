"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

With a few hundred or thousand images (monet2photo has 1,072 paintings) a discriminator memorises
its training set, its scores stop meaning anything, and the generator's gradient with them. The
paper's answer: show the discriminator every image, real and fake, through the same random
transformation T, and make T differentiable, so that the generator learns from D(T(G(x))):

    discriminator:  L_D uses D(T(real)) and D(T(fake))
    generator:      L_GAN uses D(T(G(x)))              the gradient flows back through T

Augmenting only the reals would teach the generator to draw the augmentations; augmenting both
without a gradient through T would leave the generator to match a discriminator that never saw an
untransformed image. Here T is a layer in front of each discriminator (`build_patchgan_discriminator(
diff_augment=...)`), active only when the discriminator is called with training=True: its own
`train_on_batch` on [reals; fakes] (CycleGAN.train_step, step 3) and the combined model's validity
outputs (models/combined.py, valid_A and valid_B). Called with training=False (predict, evaluation)
it passes images through unchanged. It has no weights (its random seed is no weight either): a
discriminator's weight file loads into the network with or without it.

The operations, with the paper's constants (its DiffAugment code, for images in [-1, 1]); each image
of a batch draws its own:

    color        brightness + U(-0.5, 0.5); saturation x U(0, 2) about each pixel's channel mean;
                 contrast x U(0.5, 1.5) about the image's mean. Values may leave [-1, 1], as in the paper.
    translation  a shift of up to 1/8 of the height and of the width (whole pixels), zero fill
    cutout       a square of half the side (centre anywhere in the image) set to 0

Written with keras.ops and keras.random only, so it runs and differentiates on every backend.
"""

import keras
from keras import ops

from models.config import DIFF_AUGMENT_PAPER, parse_diff_augment

TRANSLATION_RATIO = 0.125   # the largest shift, as a fraction of the side (paper: 1/8)
CUTOUT_RATIO = 0.5          # the side of the cut-out square, as a fraction of the image's (paper: 1/2)


@keras.saving.register_keras_serializable(package="cyclegan")
class DiffAugment(keras.layers.Layer):
    """Random differentiable augmentation of a batch (batch, h, w, c) in [-1, 1], in training only.

    Args:
        policy: the operations, a comma-separated string from 'color', 'translation', 'cutout'
            (applied in that order); '' is the identity.
        seed: seeds the layer's keras.random.SeedGenerator (None: from Python's seeded `random`, as
            Keras' Dropout; `keras.utils.set_random_seed` makes it repeatable).
    call(images, training) -> the same shape; `images` unchanged unless training is True. Height and
    width must be known when the layer is built (a discriminator's input shape is).
    """

    def __init__(self, policy=DIFF_AUGMENT_PAPER, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.policy = ",".join(parse_diff_augment(policy))
        self.operations = parse_diff_augment(policy)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training or not self.operations:
            return images
        for name in self.operations:
            images = getattr(self, f"_{name}")(images)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def _uniform(self, batch, low, high):
        """One number per image, shape (batch, 1, 1, 1), uniform in [low, high)."""
        return keras.random.uniform((batch, 1, 1, 1), low, high, dtype=self.compute_dtype, seed=self.seed_generator)

    def _integers(self, batch, low, high):
        """One integer per image, shape (batch, 1, 1, 1), uniform in [low, high)."""
        return keras.random.randint((batch, 1, 1, 1), low, high, dtype="int32", seed=self.seed_generator)

    def _color(self, x):
        batch = ops.shape(x)[0]
        x = x + self._uniform(batch, -0.5, 0.5)                            # brightness
        mean = ops.mean(x, axis=-1, keepdims=True)                         # (batch, h, w, 1)
        x = (x - mean) * self._uniform(batch, 0.0, 2.0) + mean             # saturation
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)                  # (batch, 1, 1, 1)
        return (x - mean) * self._uniform(batch, 0.5, 1.5) + mean          # contrast

    def _translation(self, x):
        """out[i, j] = x[i - dy, j - dx], 0 where that falls outside: a product with shifted identity
        matrices, one per image and axis (a gather would do the same; this reads as the formula)."""
        batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]

        def shift_matrices(size):            # (batch, size, size): row i holds a 1 at column i - shift
            limit = int(size * TRANSLATION_RATIO + 0.5)
            shift = ops.reshape(self._integers(batch, -limit, limit + 1), (-1, 1, 1))
            index = ops.arange(size, dtype="int32")
            return ops.cast(ops.equal(index[None, None, :], index[None, :, None] - shift), self.compute_dtype)

        x = ops.einsum("bij,bjwc->biwc", shift_matrices(height), x)      # rows: (batch, h, w, c)
        return ops.einsum("bkj,bijc->bikc", shift_matrices(width), x)     # columns

    def _cutout(self, x):
        batch, height, width = ops.shape(x)[0], x.shape[1], x.shape[2]

        def outside(size, axis_shape):       # (batch, h, 1, 1) or (batch, 1, w, 1): True off the square's span
            side = int(size * CUTOUT_RATIO + 0.5)
            start = self._integers(batch, 0, size + 1 - side % 2) - side // 2   # centre anywhere, as the paper
            index = ops.reshape(ops.arange(size, dtype="int32"), axis_shape)
            return ops.logical_or(index < start, index >= start + side)

        keep = ops.logical_or(outside(height, (1, -1, 1, 1)), outside(width, (1, 1, -1, 1)))  # (batch, h, w, 1)
        return x * ops.cast(keep, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "policy": self.policy, "seed": self.seed}
