"""70x70 PatchGAN discriminator (paper appendix 7.2; book Example 5-3), as a functional `keras.Model`.

C64-C128-C256-C512 then a conv to one channel: every output pixel scores one overlapping 70x70
patch of the input as real (1) or fake (0), with no sigmoid (least-squares GAN loss). Padding and
strides follow the official code (4x4 convs, zero padding 1, strides 2, 2, 2, 1, 1), so a 256 px
image gives a 30x30 patch map and a 128 px image a 14x14 map; with 64 filters the network has
2,764,737 parameters.

`n_layers` is the official code's `--n_layers_D` (its `NLayerDiscriminator`): the number of
stride-2 blocks, which sets the patch a score sees: 1 -> 16x16, 2 -> 34x34, 3 -> 70x70 (the paper's),
4 -> 142x142 (pix2pix, Isola et al. 2017, section 4.4 compares such patch sizes). Trained at 128 px,
the paper's 70x70 patch covers what a 140x140 patch covers at 256 px; n_layers=2 keeps the paper's
scale (34 px at 128 px is about 70 px at 256 px).

With `diff_augment` (a DiffAugment policy, models/augment.py) the network starts with a layer that
augments every image it sees in training (training=True) and passes it unchanged otherwise; it has
no weights, so the parameter count is the same and a weight file loads with or without it.
"""

import keras
from keras import layers

from models.augment import DiffAugment
from models.config import DISC_KERNEL, PAPER_DISC_N_LAYERS  # the geometry: patch_size, receptive_field
from models.layers import FusableLeakyReLU, InstanceNormalization, conv_init


def build_patchgan_discriminator(img_shape=(256, 256, 3), n_filters=64, name="patchgan_discriminator",
                                 diff_augment="", n_layers=PAPER_DISC_N_LAYERS):
    """Build the PatchGAN D: (batch, h, w, c) image in [-1, 1] -> (batch, ph, pw, 1) real/fake scores.

    diff_augment: '' (default, the paper's D) or a DiffAugment policy such as 'color,translation,cutout'.
    n_layers: stride-2 blocks, 3 (default) is the paper's 70x70 PatchGAN; see the module docstring.
    """

    def conv4(x, filters, stride, norm=True):
        x = layers.ZeroPadding2D(1)(x)
        x = layers.Conv2D(filters, DISC_KERNEL, strides=stride, padding="valid", kernel_initializer=conv_init())(x)
        if norm:
            x = InstanceNormalization()(x)
        return FusableLeakyReLU(negative_slope=0.2)(x)  # LeakyReLU(0.2); why: models/layers.py

    img = keras.Input(shape=img_shape, name="img")
    y = DiffAugment(diff_augment, dtype="float32")(img) if diff_augment else img  # float32 under mixed precision
    # The official code's widths: f, then min(2^n, 8) x f; for n_layers=3 with a 256 px image:
    y = conv4(y, n_filters, 2, norm=False)                  # (128, 128, f): no norm on the first block
    for n in range(1, n_layers):
        y = conv4(y, n_filters * min(2 ** n, 8), 2)         # (64, 64, 2f), (32, 32, 4f)
    y = conv4(y, n_filters * min(2 ** n_layers, 8), 1)      # (31, 31, 8f)
    y = layers.ZeroPadding2D(1)(y)
    out = layers.Conv2D(1, DISC_KERNEL, strides=1, padding="valid", kernel_initializer=conv_init(),
                        dtype="float32")(y)                 # (30, 30, 1), float32 scores under mixed precision
    return keras.Model(img, out, name=name)
