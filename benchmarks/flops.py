"""Floating-point operations of the CycleGAN networks, counted from their layers (not guessed).

Only convolutions and dense layers are counted (2 x multiply-adds); normalisation, padding and
activations are elementwise and add well under 1% here. A training step of `CycleGAN.train_step`
(and of the official `optimize_parameters`) does, per image pair:

    generators:      6 forwards (fake x2, reconstruction x2, identity x2; 4 if lambda_id == 0)
                     + backward of each (weight and input gradients: 2 x forward)
    discriminators:  2 forwards on the fakes for the generators' loss + input gradients only (1 x)
                     4 forwards (real and fake, d_A and d_B) + backward (2 x) for their own update

so step = 3 x n_gen x F_G + (2 x 2 + 4 x 3) x F_D = 18 F_G + 16 F_D with identity.
"""

import keras


def layer_flops(layer):
    """Forward FLOPs of one layer for one image (batch 1), from its built input/output shapes."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        _, h, w, c_in = layer.input.shape
        k_h, k_w = layer.kernel_size
        return 2 * h * w * c_in * k_h * k_w * layer.filters          # every input pixel scatters a kernel
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        k_h, k_w = layer.kernel_size
        c_in = layer.input.shape[-1] // layer.groups
        return 2 * h * w * c_out * k_h * k_w * c_in
    if isinstance(layer, keras.layers.Dense):
        return 2 * layer.input.shape[-1] * layer.units
    if isinstance(layer, keras.Model):
        return model_flops(layer)
    return 0


def model_flops(model):
    """Forward FLOPs of a functional model for one image."""
    return sum(layer_flops(layer) for layer in model.layers)


def step_flops(gan, batch_size=1):
    """FLOPs of one `CycleGAN.train_step` on `batch_size` pairs (see the module docstring)."""
    f_g, f_d = model_flops(gan.g_AB), model_flops(gan.d_A)
    n_gen = 4 if gan.config.lambda_id == 0 else 6
    return batch_size * (3 * n_gen * f_g + (2 * 2 + 4 * 3) * f_d)


def translate_flops(gan, batch_size=1):
    """FLOPs of `CycleGAN.translate` on a batch: one generator forward per image."""
    return batch_size * model_flops(gan.g_AB)
