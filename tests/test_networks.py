"""Networks: parameter counts equal the official PyTorch code's, shapes, init, custom layers, saving."""

from collections import Counter

import keras
import numpy as np
import pytest

from models import (FusableLeakyReLU, InstanceNormalization, ReflectionPadding2D, TopLeftCropping2D,
                    build_patchgan_discriminator, build_resnet_generator, build_unet_generator)
from models.config import patch_size, receptive_field


# Figures from the official implementation (junyanz/pytorch-CycleGAN-and-pix2pix, networks.py).
@pytest.mark.parametrize("upsampling", ["transposed", "nearest", "bilinear"])
@pytest.mark.parametrize("n_blocks, expected", [(9, 11_378_179), (6, 7_837_699)])
def test_resnet_generator_parameter_count_matches_official(n_blocks, expected, upsampling):
    """The resize-convolutions (issue #33) have the transposed convs' 3x3 x filters weights: same count."""
    model = build_resnet_generator((64, 64, 3), n_filters=64, n_blocks=n_blocks, upsampling=upsampling)
    assert model.count_params() == expected


@pytest.mark.parametrize("upsampling, even", [("transposed", False), ("nearest", True), ("bilinear", True)])
def test_resize_convolution_upsampling_leaves_no_checkerboard_on_a_flat_input(upsampling, even):
    """Odena et al. 2016: a stride-2 transposed conv gives even and odd output pixels different numbers of
    kernel taps, so even a flat feature map comes out as a period-2 pattern; a resize, then a conv, does not."""
    from models.generators import _upsample
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 4))
    block = keras.Model(inputs, _upsample(inputs, 4, upsampling))
    y = keras.ops.convert_to_numpy(block(np.ones((1, 8, 8, 4), "float32")))[0]
    assert y.shape == (16, 16, 4)
    centre = y[2:-2, 2:-2]   # away from the borders' padding
    if even:
        np.testing.assert_allclose(centre, np.broadcast_to(centre[:1, :1], centre.shape), atol=1e-3)
    else:
        assert centre.std(axis=(0, 1)).max() > 0.3   # a channel alternates between even and odd pixels
    with pytest.raises(ValueError, match="upsampling='cubic'"):
        build_resnet_generator((32, 32, 3), 4, 1, upsampling="cubic")


@pytest.mark.parametrize("n_filters, expected", [(64, 2_764_737), (32, 694_241)])
def test_patchgan_parameter_count_matches_official(n_filters, expected):
    assert build_patchgan_discriminator((64, 64, 3), n_filters=n_filters).count_params() == expected


def test_generators_keep_the_image_shape_and_range():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    for model in (build_unet_generator((32, 32, 3), 8), build_resnet_generator((32, 32, 3), 8, 2),
                  build_resnet_generator((32, 32, 3), 8, 2, upsampling="bilinear")):
        y = keras.ops.convert_to_numpy(model(x))
        assert y.shape == x.shape
        assert y.min() >= -1 and y.max() <= 1


# The official NLayerDiscriminator with --n_layers_D 1, 2, 3, 4 and 64 filters, counted by hand from its
# layer list: widths 64, min(2^n, 8) x 64, 4x4 convs with bias, no affine instance norm, one output channel.
@pytest.mark.parametrize("n_layers, expected", [(1, 136_385), (2, 662_977), (3, 2_764_737), (4, 6_959_553)])
def test_patchgan_depth_matches_the_official_n_layers_discriminator(n_layers, expected):
    d = build_patchgan_discriminator((128, 128, 3), n_filters=64, n_layers=n_layers)
    assert d.count_params() == expected
    assert d.output_shape == (None, patch_size(128, n_layers), patch_size(128, n_layers), 1)


def test_patchgan_patch_sides_are_the_pix2pix_papers():
    """pix2pix (Isola et al. 2017, section 4.4) compares 16x16, 70x70 and 286x286 patches."""
    assert [receptive_field(n) for n in (1, 2, 3, 4, 5)] == [16, 34, 70, 142, 286]
    assert [patch_size(128, n) for n in (1, 2, 3, 4)] == [62, 30, 14, 6]


@pytest.mark.parametrize("size, patch", [(256, 30), (128, 14), (64, 6), (32, 2)])
def test_patchgan_output_is_the_official_patch_map(size, patch):
    d = build_patchgan_discriminator((size, size, 3), n_filters=4)
    assert d.output_shape == (None, patch, patch, 1)
    assert patch_size(size) == patch


def test_weights_are_initialised_from_n_0_0_02():
    model = build_resnet_generator((32, 32, 3), n_filters=32, n_blocks=2)
    kernels = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in model.weights if "kernel" in w.path])
    biases = np.concatenate([keras.ops.convert_to_numpy(w).ravel() for w in model.weights if "bias" in w.path])
    assert abs(kernels.mean()) < 1e-3
    assert kernels.std() == pytest.approx(0.02, rel=0.05)
    assert not biases.any()


def test_instance_norm_equals_group_norm_with_one_group_per_channel():
    x = np.random.default_rng(1).normal(3, 2, (2, 8, 8, 5)).astype("float32")
    ours = keras.ops.convert_to_numpy(InstanceNormalization()(x))
    keras_gn = keras.layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5)
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(keras_gn(x)), atol=1e-4)
    # Per sample and channel: zero mean, unit variance.
    np.testing.assert_allclose(ours.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(ours.std(axis=(1, 2)), 1, atol=1e-3)


def test_reflection_padding_mirrors_like_numpy():
    x = np.arange(2 * 4 * 5 * 3, dtype="float32").reshape(2, 4, 5, 3)
    y = keras.ops.convert_to_numpy(ReflectionPadding2D(((1, 2), (3, 1)))(x))
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (3, 1), (0, 0)), mode="reflect"))
    assert ReflectionPadding2D(2).compute_output_shape((None, 4, 5, 3)) == (None, 8, 9, 3)


def gradient(fn, x):
    """d sum(fn(x) * weights) / dx for fixed random weights, on whichever backend runs the tests."""
    weights = np.random.default_rng(7).normal(size=keras.ops.shape(fn(x))).astype("float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) * weights)
        return tape.gradient(loss, x).numpy()
    if backend == "jax":
        import jax
        return np.asarray(jax.grad(lambda v: (fn(v) * weights).sum())(x))
    import torch
    x = torch.tensor(x, requires_grad=True)
    (fn(x) * torch.tensor(weights)).sum().backward()
    return x.grad.numpy()


def test_instance_norm_gradient_equals_autodiff_of_group_norm():
    """The hand-written backward of InstanceNormalization (models/layers.py) is the true gradient."""
    x = np.random.default_rng(3).normal(1, 3, (2, 6, 7, 4)).astype("float32")
    reference = keras.layers.GroupNormalization(groups=-1, center=False, scale=False, epsilon=1e-5)
    np.testing.assert_allclose(gradient(InstanceNormalization(), x), gradient(reference, x), atol=2e-5)
    ours = InstanceNormalization(center=True, scale=True)  # the learned gain and offset: autodiff
    reference = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    for layer in (ours, reference):
        layer.build(x.shape)
        layer.gamma.assign(np.arange(1, 5, dtype="float32"))
    np.testing.assert_allclose(gradient(ours, x), gradient(reference, x), atol=1e-4)


tensorflow_only = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow kernel")


@tensorflow_only
@pytest.mark.parametrize("fused", [True, False])
def test_instance_norm_in_training_is_the_same_with_the_fused_kernel_or_keras_ops(monkeypatch, fused):
    """utils/runtime/fused_norm.py: one image in a training step, forced on and off on every machine; the
    same numbers and gradient as the keras.ops norm of translation (training=False, never fused)."""
    from utils.runtime import fused_norm
    monkeypatch.setattr(fused_norm, "wanted", lambda: fused)
    spy = []
    monkeypatch.setattr(fused_norm, "instance_norm",
                        lambda x, epsilon, kernel=fused_norm.instance_norm: spy.append(x.shape) or kernel(x, epsilon))
    x = np.random.default_rng(5).normal(2, 3, (1, 6, 7, 4)).astype("float32")
    layer = InstanceNormalization()
    training = keras.ops.convert_to_numpy(layer(x, training=True))
    assert spy == ([(1, 6, 7, 4)] if fused else [])
    np.testing.assert_allclose(training, keras.ops.convert_to_numpy(layer(x, training=False)), atol=1e-5)
    np.testing.assert_allclose(gradient(lambda v: layer(v, training=True), x),
                               gradient(lambda v: layer(v, training=False), x), atol=2e-5)
    calls = len(spy)
    layer(np.concatenate([x, x]), training=True)   # a batch of two: keras.ops (the fused op pools a batch)
    assert len(spy) == calls


@tensorflow_only
@pytest.mark.parametrize("kind, onednn, expected", [("avx512", "1", True), ("avx512", None, True),
                                                    ("avx512", "0", False), ("avx2", "1", False)])
def test_the_fused_kernel_is_chosen_with_avx512_and_onednn_only(monkeypatch, kind, onednn, expected):
    """Measured faster with AVX-512 only, slower without (docs/speed.md#levers-tried-against-the-official-code)."""
    import platform

    from utils.runtime import fused_norm
    monkeypatch.setenv("CYCLEGAN_CPU_KIND", kind)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    if onednn is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    fused_norm.wanted.cache_clear()
    try:
        assert fused_norm.wanted() is expected
    finally:
        fused_norm.wanted.cache_clear()


def test_top_left_crop_equals_keras_cropping_forward_and_backward():
    """The ResNet generator's crop (models/layers.py) with its written-out gradient is Cropping2D's."""
    x = np.random.default_rng(4).normal(size=(2, 7, 6, 3)).astype("float32")
    ours, reference = TopLeftCropping2D(1, 2), keras.layers.Cropping2D(((1, 0), (2, 0)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(reference(x)))
    np.testing.assert_array_equal(gradient(ours, x), gradient(reference, x))
    assert ours.compute_output_shape((None, 7, 6, 3)) == (None, 6, 4, 3)
    assert TopLeftCropping2D.from_config(ours.get_config()).cols == 2
    with pytest.raises(ValueError, match="rows and cols must be >= 0"):
        TopLeftCropping2D(-1, 0)


def test_fusable_leaky_relu_equals_keras_leaky_relu_forward_and_backward():
    """The discriminator's LeakyReLU (gradient read from its output, models/layers.py) is Keras' own."""
    x = np.random.default_rng(5).normal(size=(2, 5, 4, 3)).astype("float32")
    x[0, 0, 0, 0] = 0.0  # at 0 both take the negative slope
    ours, reference = FusableLeakyReLU(0.2), keras.layers.LeakyReLU(negative_slope=0.2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(reference(x)),
                               atol=1e-7)
    ours_grad, reference_grad = gradient(ours, x), gradient(reference, x)
    # At exactly 0 the derivative is a convention: TensorFlow's LeakyReLU takes the negative slope, JAX's
    # and PyTorch's 1; ours takes the slope on every backend. Everywhere else they must agree.
    away = x != 0
    np.testing.assert_allclose(ours_grad[away], reference_grad[away], atol=1e-7)
    at_zero = ~away
    assert np.allclose(ours_grad[at_zero] * 5, reference_grad[at_zero]) or np.allclose(ours_grad[at_zero],
                                                                                           reference_grad[at_zero])
    assert FusableLeakyReLU.from_config(ours.get_config()).negative_slope == 0.2
    with pytest.raises(ValueError, match="negative_slope must be > 0"):
        FusableLeakyReLU(0.0)


def test_reflection_padding_too_large_is_an_error_naming_the_sizes():
    with pytest.raises(ValueError, match="padding 4 .* height 4"):
        ReflectionPadding2D(((4, 0), (0, 0)))(np.zeros((1, 4, 8, 1), "float32"))


@pytest.mark.parametrize("builder", [lambda: build_unet_generator((32, 32, 3), 4),
                                     lambda: build_unet_generator((32, 32, 3), 4, upsampling="bilinear"),
                                     lambda: build_resnet_generator((32, 32, 3), 4, 1),
                                     lambda: build_patchgan_discriminator((32, 32, 3), 4),
                                     lambda: build_patchgan_discriminator((32, 32, 3), 4, diff_augment="color")])
def test_models_round_trip_through_keras_files_without_custom_objects(tmp_path, builder):
    model = builder()
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    x = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    assert InstanceNormalization.from_config(InstanceNormalization(center=True).get_config()).center


def test_unet_first_block_keeps_the_mean_colour_unless_the_book_variant_is_asked_for():
    """Official U-Net convention: no norm on the outermost block (see build_unet_generator)."""
    def norms(model):
        return sum(isinstance(layer, InstanceNormalization) for layer in model.layers)
    ours, book = build_unet_generator((32, 32, 3), 4), build_unet_generator((32, 32, 3), 4, first_layer_norm=True)
    assert norms(book) == norms(ours) + 1 == 7
    assert ours.count_params() == book.count_params()


UNET_LAYERS = {"InputLayer": 1, "Conv2D": 8, "Activation": 7, "InstanceNormalization": 6, "UpSampling2D": 4,
               "Concatenate": 3}   # the book's U-Net (Example 5-2), 29 layers


def upsampling_and_kernels(model):
    """The interpolation of each UpSampling2D and the kernel of the conv right after it."""
    found = []
    for layer, following in zip(model.layers, model.layers[1:]):
        if isinstance(layer, keras.layers.UpSampling2D):
            assert isinstance(following, keras.layers.Conv2D)
            found.append((layer.interpolation, tuple(following.kernel_size)))
    return found


def test_unet_by_default_is_the_books_network_unchanged():
    """Default upsampling='nearest': the network as before the switch (issue 26), layer by layer."""
    model = build_unet_generator((32, 32, 3), 4)
    assert Counter(type(layer).__name__ for layer in model.layers) == UNET_LAYERS
    assert upsampling_and_kernels(model) == [("nearest", (4, 4))] * 4
    assert model.count_params() == 24_731
    assert build_unet_generator((128, 128, 3), 32).count_params() == 1_545_411   # the book's apple2orange U-Net


def test_unet_bilinear_upsampling_has_3x3_convs_and_keeps_shapes():
    """upsampling='bilinear': the same layers, bilinear resizes and 3x3 convs after them, fewer weights."""
    f = 4
    nearest = build_unet_generator((32, 32, 3), f)
    bilinear = build_unet_generator((32, 32, 3), f, upsampling="bilinear")
    assert Counter(type(layer).__name__ for layer in bilinear.layers) == UNET_LAYERS
    assert upsampling_and_kernels(bilinear) == [("bilinear", (3, 3))] * 4
    # The four convs after a resize (inputs 8f, 4f + 4f, 2f + 2f, f + f; outputs 4f, 2f, f, 3) lose 16 - 9 taps.
    assert nearest.count_params() - bilinear.count_params() == 7 * (8 * f * 4 * f + 8 * f * 2 * f + 4 * f * f
                                                                    + 2 * f * 3) == 5_992
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(bilinear(x))
    assert y.shape == x.shape and -1 <= y.min() and y.max() <= 1
    with pytest.raises(ValueError, match="upsampling='cubic'.*nearest.*bilinear"):
        build_unet_generator((32, 32, 3), f, upsampling="cubic")
