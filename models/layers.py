"""Custom layers of the CycleGAN networks, written with `keras.ops` only (any Keras backend).

- `InstanceNormalization`: per-sample, per-channel normalisation (Ulyanov et al. 2016), used by
  every CycleGAN network instead of batch norm (paper, section 4 / appendix 7.2; book, "Instance
  Normalization Layer"). No affine parameters by default, as in the official code
  (`nn.InstanceNorm2d(affine=False)`) and the book (`center=False, scale=False`).
  It computes the same as `keras.layers.GroupNormalization(groups=-1, center=False, scale=False)`
  (tests/test_networks.py checks this) without the reshape to groups. In a training step on TensorFlow
  with AVX-512 a batch of one image is normalised by one fused op instead (utils/runtime/fused_norm.py).
- `ReflectionPadding2D`: mirror padding used by the paper's ResNet generator to reduce border
  artifacts (paper, appendix 7.2: "Reflection padding was used to reduce artifacts").
- `TopLeftCropping2D`: drops the first rows and columns, which turns a 'valid' stride-2 transposed
  conv into PyTorch's `ConvTranspose2d(k=3, s=2, padding=1, output_padding=1)` (the ResNet
  generator's upsampling), with a zero pad as its gradient.
- `FusableLeakyReLU`: the discriminator's LeakyReLU(0.2), with its gradient read from its output
  instead of its input, so that TensorFlow may fuse the convolution before it (see its docstring).

All are registered, so a model that uses them saves with `model.save("g.keras")` and loads
with `keras.models.load_model("g.keras")` and no `custom_objects`.
"""

import keras
from keras import ops

from utils.runtime import fused_norm


def conv_init(seed=None):
    """The paper's weight initialisation: Gaussian N(0, 0.02) (official code, `init_weights`)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)


def _instance_norm(x, epsilon):
    """(x - mean) / sqrt(var + eps) over axes 1, 2 (per sample and channel), gradient written out.

    The closed-form backward: dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps).
    Why: two reductions instead of autodiff through `ops.moments`, after every convolution
    (docs/speed.md#a-cheaper-instance-norm). tests/test_networks.py checks it against autodiff of
    GroupNormalization.
    """
    @ops.custom_gradient
    def normalize(x):
        centered = x - ops.mean(x, axis=(1, 2), keepdims=True)
        inv_std = ops.rsqrt(ops.mean(ops.square(centered), axis=(1, 2), keepdims=True) + epsilon)
        y = centered * inv_std

        def grad(*args, upstream=None):  # grad(upstream) on TensorFlow and JAX, grad(x, upstream=) on PyTorch
            dy = args[0] if upstream is None else upstream
            return inv_std * (dy - ops.mean(dy, axis=(1, 2), keepdims=True)
                              - y * ops.mean(dy * y, axis=(1, 2), keepdims=True))

        return y, grad

    return normalize(x)


@keras.saving.register_keras_serializable(package="cyclegan")
class InstanceNormalization(keras.layers.Layer):
    """Normalise each sample and channel over the spatial axes: y = (x - mean) / sqrt(var + eps).

    Args:
        epsilon: added to the variance (1e-5, as PyTorch's InstanceNorm2d).
        center, scale: learn a per-channel offset beta / gain gamma (off, as in the paper's code).

    Input and output: (batch, height, width, channels), channels last.
    """

    def __init__(self, epsilon=1e-5, center=False, scale=False, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma") if self.scale else None
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta") if self.center else None

    def call(self, x, training=None):
        # Statistics in float32 even under mixed precision, for a stable variance. In a training step on
        # TensorFlow with AVX-512, one fused op where it is faster (utils/runtime/fused_norm.py).
        x32 = ops.cast(x, "float32")
        y = fused_norm.instance_norm(x32, self.epsilon) if fused_norm.applies(x, training) else \
            _instance_norm(x32, self.epsilon)
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return ops.cast(y, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


@keras.saving.register_keras_serializable(package="cyclegan")
class ReflectionPadding2D(keras.layers.Layer):
    """Pad height and width by mirroring the border (no edge repeat), like `nn.ReflectionPad2d`.

    Args:
        padding: int p (p pixels on every side) or ((top, bottom), (left, right)).

    (batch, h, w, c) -> (batch, h + top + bottom, w + left + right, c). Each padding must be
    smaller than the padded dimension, as for numpy's and PyTorch's reflect mode.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, int):
            padding = ((padding, padding), (padding, padding))
        self.padding = tuple(tuple(int(p) for p in pair) for pair in padding)

    def call(self, x):
        (top, bottom), (left, right) = self.padding
        for name, size, pads in (("height", x.shape[1], (top, bottom)), ("width", x.shape[2], (left, right))):
            if size is not None and max(pads) >= size:
                raise ValueError(f"ReflectionPadding2D: padding {max(pads)} must be smaller than the input's "
                                 f"{name} {size} (a mirror cannot repeat the edge); use a larger image")
        return ops.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        (top, bottom), (left, right) = self.padding
        height = None if height is None else height + top + bottom
        width = None if width is None else width + left + right
        return (batch, height, width, channels)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def _crop_top_left(x, rows, cols):
    """x[:, rows:, cols:, :], with the gradient written out as a zero pad of the upstream gradient.

    Why: a pad is a plain copy the next convolution can fuse with; autodiff of a slice on TensorFlow is a
    StridedSliceGrad, which fills a zero tensor and scatters into it (docs/speed.md#a-cheaper-crop).
    """
    @ops.custom_gradient
    def crop(x):
        def grad(*args, upstream=None):  # grad(upstream) on TensorFlow and JAX, grad(x, upstream=) on PyTorch
            dy = args[0] if upstream is None else upstream
            return ops.pad(dy, ((0, 0), (rows, 0), (cols, 0), (0, 0)))

        return x[:, rows:, cols:, :], grad

    return crop(x)


@keras.saving.register_keras_serializable(package="cyclegan")
class TopLeftCropping2D(keras.layers.Layer):
    """Drop the first `rows` rows and `cols` columns: (batch, h, w, c) -> (batch, h - rows, w - cols, c).

    The same as `keras.layers.Cropping2D(((rows, 0), (cols, 0)))`, with a cheaper gradient.
    """

    def __init__(self, rows=1, cols=1, **kwargs):
        super().__init__(**kwargs)
        self.rows, self.cols = int(rows), int(cols)
        if self.rows < 0 or self.cols < 0:
            raise ValueError(f"TopLeftCropping2D: rows and cols must be >= 0, got rows={rows}, cols={cols}")

    def call(self, x):
        return _crop_top_left(x, self.rows, self.cols)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, None if height is None else height - self.rows, None if width is None else width - self.cols,
                channels)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "cols": self.cols}


def _leaky_relu(x, negative_slope):
    """leaky_relu(x) with the gradient computed from the output: dy * (1 if y > 0 else slope).

    With slope > 0, y > 0 exactly where x > 0, so this is the autodiff gradient. Why: autodiff's
    LeakyReluGrad reads the BiasAdd before it, which TensorFlow's remapper fuses away inside the combined
    model; the remapper then drops every fusion of that graph (docs/speed.md#no-dropped-fusions).
    """
    @ops.custom_gradient
    def activate(x):
        y = ops.leaky_relu(x, negative_slope)

        def grad(*args, upstream=None):  # grad(upstream) on TensorFlow and JAX, grad(x, upstream=) on PyTorch
            dy = args[0] if upstream is None else upstream
            return ops.where(y > 0, dy, dy * ops.cast(negative_slope, dy.dtype))

        return y, grad

    return activate(x)


@keras.saving.register_keras_serializable(package="cyclegan")
class FusableLeakyReLU(keras.layers.Layer):
    """`keras.layers.LeakyReLU(negative_slope)` with a gradient TensorFlow can fuse (see `_leaky_relu`).

    Same forward and backward as LeakyReLU (tests/test_networks.py); any shape in, the same shape out.
    """

    def __init__(self, negative_slope=0.2, **kwargs):
        super().__init__(**kwargs)
        if negative_slope <= 0:
            raise ValueError(f"FusableLeakyReLU: negative_slope must be > 0, got {negative_slope}")
        self.negative_slope = float(negative_slope)

    def call(self, x):
        return _leaky_relu(x, self.negative_slope)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}
