"""Custom layers of the CycleGAN networks, written with `keras.ops` only (any Keras backend).

- `InstanceNormalization`: per-sample, per-channel normalisation (Ulyanov et al. 2016), used by
  every CycleGAN network instead of batch norm (paper, section 4 / appendix 7.2; book, "Instance
  Normalization Layer"). No affine parameters by default, as in the official code
  (`nn.InstanceNorm2d(affine=False)`) and the book (`center=False, scale=False`).
  It computes the same as `keras.layers.GroupNormalization(groups=-1, center=False, scale=False)`
  (tests/test_layers.py checks this) without the reshape to groups.
- `ReflectionPadding2D`: mirror padding used by the paper's ResNet generator to reduce border
  artifacts (paper, appendix 7.2: "Reflection padding was used to reduce artifacts").

Both are registered, so a model that uses them saves with `model.save("g.keras")` and loads
with `keras.models.load_model("g.keras")` and no `custom_objects`.
"""

import keras
from keras import ops


def conv_init(seed=None):
    """The paper's weight initialisation: Gaussian N(0, 0.02) (official code, `init_weights`)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)


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

    def call(self, x):
        # Statistics in float32 even under mixed precision, for a stable variance.
        x32 = ops.cast(x, "float32")
        mean, variance = ops.moments(x32, axes=(1, 2), keepdims=True)  # (batch, 1, 1, channels)
        y = (x32 - mean) * ops.rsqrt(variance + self.epsilon)
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
        return ops.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        (top, bottom), (left, right) = self.padding
        height = None if height is None else height + top + bottom
        width = None if width is None else width + left + right
        return (batch, height, width, channels)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}
