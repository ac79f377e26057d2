"""70x70 PatchGAN discriminator (paper appendix 7.2; book Example 5-3), as a functional `keras.Model`.

C64-C128-C256-C512 then a conv to one channel: every output pixel scores one overlapping 70x70
patch of the input as real (1) or fake (0), with no sigmoid (least-squares GAN loss). Padding and
strides follow the official code (4x4 convs, zero padding 1, strides 2, 2, 2, 1, 1), so a 256 px
image gives a 30x30 patch map and a 128 px image a 14x14 map; with 64 filters the network has
2,764,737 parameters.

With `diff_augment` (a DiffAugment policy, models/augment.py) the network starts with a layer that
augments every image it sees in training (training=True) and passes it unchanged otherwise; it has
no weights, so the parameter count is the same and a weight file loads with or without it.
"""

import keras
from keras import layers

from models.augment import DiffAugment
from models.layers import FusableLeakyReLU, InstanceNormalization, conv_init

STRIDES = (2, 2, 2, 1, 1)  # C64, C128, C256, C512, output conv


def patch_size(img_size):
    """Side of the patch map for an image side of `img_size` pixels (k=4, p=1 convs with STRIDES)."""
    for stride in STRIDES:
        img_size = (img_size + 2 - 4) // stride + 1
    return img_size


def build_patchgan_discriminator(img_shape=(256, 256, 3), n_filters=64, name="patchgan_discriminator",
                                 diff_augment=""):
    """Build the PatchGAN D: (batch, h, w, c) image in [-1, 1] -> (batch, ph, pw, 1) real/fake scores.

    diff_augment: '' (default, the paper's D) or a DiffAugment policy such as 'color,translation,cutout'.
    """

    def conv4(x, filters, strides, norm=True):
        x = layers.ZeroPadding2D(1)(x)
        x = layers.Conv2D(filters, 4, strides=strides, padding="valid", kernel_initializer=conv_init())(x)
        if norm:
            x = InstanceNormalization()(x)
        return FusableLeakyReLU(negative_slope=0.2)(x)  # LeakyReLU(0.2); why: models/layers.py

    img = keras.Input(shape=img_shape, name="img")
    y = DiffAugment(diff_augment, dtype="float32")(img) if diff_augment else img  # float32 under mixed precision
    y = conv4(y, n_filters, STRIDES[0], norm=False)    # (h/2, w/2, f): no norm on the first block
    y = conv4(y, n_filters * 2, STRIDES[1])            # (h/4, w/4, 2f)
    y = conv4(y, n_filters * 4, STRIDES[2])            # (h/8, w/8, 4f)
    y = conv4(y, n_filters * 8, STRIDES[3])            # (h/8 - 1, w/8 - 1, 8f)
    y = layers.ZeroPadding2D(1)(y)
    out = layers.Conv2D(1, 4, strides=STRIDES[4], padding="valid", kernel_initializer=conv_init(),
                        dtype="float32")(y)                # float32 scores under mixed precision
    return keras.Model(img, out, name=name)                  # (h/8 - 2, w/8 - 2, 1)
