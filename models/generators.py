"""The two CycleGAN generator architectures, as functional `keras.Model`s.

- `build_unet_generator`: the book's U-Net (Example 5-2): four stride-2 downsampling blocks, three
  upsampling blocks with skip connections (Concatenate), a last upsampling and a 4x4 conv + tanh
  (`upsampling="bilinear"`: bilinear resizes and 3x3 convs instead, against checkerboards).
- `build_resnet_generator`: the paper's ResNet generator (appendix 7.2, after Johnson et al.):
  c7s1-64, d128, d256, n x R256, u128, u64, c7s1-3 (tanh), with reflection padding, as the
  official PyTorch code builds it (same layers, same padding, same parameter count); `upsampling="nearest"`
  or `"bilinear"`: resize-convolutions for u128 and u64 instead, against checkerboards.

Both map an image in [-1, 1] of shape (batch, h, w, channels) to an image of the same shape in
[-1, 1], hold no training state and use N(0, 0.02) weights.
"""

import keras
import numpy as np
from keras import layers

from models.config import RESNET_UPSAMPLING, UNET_UPSAMPLING
from models.layers import InstanceNormalization, ReflectionPadding2D, TopLeftCropping2D, conv_init

# upsampling -> (UpSampling2D interpolation, kernel of the conv after it)
_RESIZE_CONV = {"nearest": ("nearest", 4), "bilinear": ("bilinear", 3)}


def build_unet_generator(img_shape=(128, 128, 3), n_filters=32, name="unet_generator", first_layer_norm=False,
                         upsampling="nearest"):
    """Book Example 5-2: U-Net generator. Height and width must be divisible by 16.

    Shapes for a 128 px input and n_filters f: 128 -> d1 64 (f) -> d2 32 (2f) -> d3 16 (4f) -> d4 8 (8f)
    -> u1 16 (4f + 4f skip) -> u2 32 (2f + 2f) -> u3 64 (f + f) -> upsample 128 -> conv 4x4 -> tanh.

    One change from the book: by default the first block d1 has no instance norm, as the official
    pix2pix/CycleGAN U-Net's outermost block. Normalising d1 subtracts each image's mean colour before
    any skip connection, so the decoder must guess the background colour: measured on the paired
    synthetic_apple2orange test set (docs/ablation/README.md), it doubled the background change of a
    translation. `first_layer_norm=True` builds the book's exact network (same parameter count).

    upsampling: how each of the four upsamplings doubles height and width before its convolution.
    'nearest' (default): the book's, nearest-neighbour UpSampling2D and a 4x4 conv. 'bilinear':
    bilinear UpSampling2D and a 3x3 conv (9/16 of those convs' weights; the rest unchanged).
    Why: Odena et al. 2016 ("Deconvolution and Checkerboard Artifacts", Distill) trace checkerboards
    to upsampling that treats neighbouring output pixels unevenly, and advise resizing, then
    convolving, as the book does. But a nearest-neighbour resize copies each pixel into a 2x2 block,
    so a smooth gradient (a sky) becomes a staircase, and any convolution of a staircase alternates
    between even and odd pixels: a period-2 pattern, the checkerboard; the even 4x4 kernel with
    'same' padding also sits half a pixel off centre. A bilinear resize keeps a gradient a gradient
    (it reproduces a linear ramp exactly), and a 3x3 kernel is centred. Odena et al. themselves did
    best with nearest neighbour in their models: which of the two paints better here is an
    experiment (docs/training.md), so the book's stays the default.
    """
    if upsampling not in _RESIZE_CONV:
        raise ValueError(f"upsampling={upsampling!r}: must be one of {UNET_UPSAMPLING}.")
    interpolation, kernel = _RESIZE_CONV[upsampling]

    def downsample(x, filters, norm=True):
        x = layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=conv_init())(x)
        if norm:
            x = InstanceNormalization()(x)
        return layers.Activation("relu")(x)

    def upsample(x, skip, filters):
        x = layers.UpSampling2D(size=2, interpolation=interpolation)(x)
        x = layers.Conv2D(filters, kernel, strides=1, padding="same", kernel_initializer=conv_init())(x)
        x = InstanceNormalization()(x)
        x = layers.Activation("relu")(x)
        return layers.Concatenate()([x, skip])

    img = keras.Input(shape=img_shape, name="img")
    d1 = downsample(img, n_filters, norm=first_layer_norm)
    d2 = downsample(d1, n_filters * 2)
    d3 = downsample(d2, n_filters * 4)
    d4 = downsample(d3, n_filters * 8)
    u1 = upsample(d4, d3, n_filters * 4)
    u2 = upsample(u1, d2, n_filters * 2)
    u3 = upsample(u2, d1, n_filters)
    u4 = layers.UpSampling2D(size=2, interpolation=interpolation)(u3)
    out = layers.Conv2D(img_shape[-1], kernel, strides=1, padding="same", activation="tanh",
                        kernel_initializer=conv_init(), dtype="float32")(u4)  # float32 under mixed precision
    return keras.Model(img, out, name=name)


def _conv_norm_relu(x, filters, kernel_size, strides=1, reflect=0, zero_pad=0):
    """Padding, conv (valid), instance norm, ReLU: the c7s1-k and dk units of the paper."""
    if reflect:
        x = ReflectionPadding2D(reflect)(x)
    if zero_pad:
        x = layers.ZeroPadding2D(zero_pad)(x)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="valid", kernel_initializer=conv_init())(x)
    x = InstanceNormalization()(x)
    return layers.Activation("relu")(x)


def _residual_block(x, filters):
    """R_k: two 3x3 convs with reflection padding and instance norm, plus the identity shortcut."""
    y = _conv_norm_relu(x, filters, 3, reflect=1)
    y = ReflectionPadding2D(1)(y)
    y = layers.Conv2D(filters, 3, padding="valid", kernel_initializer=conv_init())(y)
    y = InstanceNormalization()(y)
    return layers.Add()([x, y])


def _upsample(x, filters, upsampling="transposed"):
    """u_k: 3x3 stride-2 transposed conv, as PyTorch's ConvTranspose2d(k=3, s=2, p=1, output_padding=1);
    or, with upsampling 'nearest' / 'bilinear', a 2x resize, reflection pad 1 and a 3x3 conv.

    A 'valid' transposed conv gives 2h + 1 rows; PyTorch's padding=1 drops the first row and column.
    The resize-convolution has the same 3x3 x filters weights, so the parameter count is unchanged: it
    spreads every input pixel evenly over the output, where a stride-2 transposed conv gives even and odd
    pixels different numbers of kernel taps, the checkerboard (Odena et al. 2016, "Deconvolution and
    Checkerboard Artifacts").
    """
    if upsampling == "transposed":
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="valid", kernel_initializer=conv_init())(x)
        x = TopLeftCropping2D(1, 1)(x)
    else:
        x = layers.UpSampling2D(size=2, interpolation=upsampling)(x)
        x = ReflectionPadding2D(1)(x)
        x = layers.Conv2D(filters, 3, padding="valid", kernel_initializer=conv_init())(x)
    x = InstanceNormalization()(x)
    return layers.Activation("relu")(x)


def build_resnet_generator(img_shape=(256, 256, 3), n_filters=64, n_blocks=9, name="resnet_generator",
                           upsampling="transposed"):
    """Paper appendix 7.2: ResNet generator with n_blocks residual blocks (6 at 128 px, 9 at 256 px).

    Height and width must be divisible by 4. With 64 filters it has 11,378,179 parameters for
    9 blocks and 7,837,699 for 6, exactly as the official code, with any `upsampling` (_upsample):
    'transposed' (the paper's), 'nearest' or 'bilinear' (resize-convolutions, against checkerboards).
    """
    if upsampling not in RESNET_UPSAMPLING:
        raise ValueError(f"upsampling={upsampling!r}: must be one of {RESNET_UPSAMPLING}.")
    img = keras.Input(shape=img_shape, name="img")
    x = _conv_norm_relu(img, n_filters, 7, reflect=3)                    # c7s1-64: (h, w, f)
    x = _conv_norm_relu(x, n_filters * 2, 3, strides=2, zero_pad=1)     # d128: (h/2, w/2, 2f)
    x = _conv_norm_relu(x, n_filters * 4, 3, strides=2, zero_pad=1)     # d256: (h/4, w/4, 4f)
    for _ in range(n_blocks):
        x = _residual_block(x, n_filters * 4)                           # R256 x n
    x = _upsample(x, n_filters * 2, upsampling)                          # u128: (h/2, w/2, 2f)
    x = _upsample(x, n_filters, upsampling)                              # u64: (h, w, f)
    x = ReflectionPadding2D(3)(x)
    out = layers.Conv2D(img_shape[-1], 7, padding="valid", activation="tanh", kernel_initializer=conv_init(),
                        dtype="float32")(x)                              # float32 under mixed precision
    return keras.Model(img, out, name=name)


def run_generator(generator, images, batch_size=16):
    """Images (n, h, w, c) in [-1, 1] through a generator, `batch_size` at a time -> numpy float32.

    The one way this project runs a generator for its outputs (CycleGAN.translate, translation at a
    photo's own size, the evaluators): an eager call with training=False, so images of a new size
    need no retrace; h and w must be multiples of the config's `size_multiple`.
    """
    images = np.asarray(images, np.float32)
    outputs = [keras.ops.convert_to_numpy(generator(images[i:i + batch_size], training=False))
               for i in range(0, len(images), batch_size)]
    return np.concatenate(outputs).astype(np.float32, copy=False) if outputs else images[:0]
