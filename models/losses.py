"""The paper's losses, each a named function (Zhu et al. 2017, section 3; book Examples 5-4 and 5-5).

Names: a = a real image of domain A, b = one of B; G = g_AB, F = g_BA, D_X = d_A, D_Y = d_B (models/cyclegan.py).
Every term is a mean over all the elements of a batch (pixels, or the PatchGAN's patch scores), in float32 also
under mixed precision.

    adversarial_loss     eq. 1 with least squares (LSGAN, section 4): mean (D(x) - target)^2
    cycle_loss           eq. 2, L1: |F(G(a)) - a| (and |G(F(b)) - b|)
    identity_loss        section 5.2, L1: |F(a) - a| (and |G(b) - b|)
    generator_loss       eq. 3 plus the identity term: the weighted sum the generators minimise
    discriminator_loss   1/2 (E[(D(real) - 1)^2] + E[D(fake)^2]): "we divide the objective by 2 while
                         optimizing D" (section 7.1); the discriminators are compiled with it as
                         discriminator_loss_per_image, its form for Keras' train_on_batch
"""

import keras
from keras import ops

REAL, FAKE = 1.0, 0.0   # the LSGAN targets of a patch score: real 1, fake 0


def _f32(x):
    return ops.cast(x, "float32")


def adversarial_loss(scores, target):
    """LSGAN (eq. 1 with least squares): mean over the patch scores of (D(x) - target)^2.

    The generators push D(G(a)) to REAL; the discriminator pushes D(real) to REAL and D(fake) to FAKE."""
    return ops.mean(ops.square(_f32(scores) - _f32(target)))


def cycle_loss(reconstructed, real):
    """Cycle consistency (eq. 2), L1: mean |F(G(a)) - a| for A -> B -> A (the same for B -> A -> B)."""
    return ops.mean(ops.abs(_f32(reconstructed) - _f32(real)))


def identity_loss(translated, real):
    """Identity (section 5.2), L1: mean |F(a) - a|, a generator given an image of its own output domain."""
    return ops.mean(ops.abs(_f32(translated) - _f32(real)))


# The six outputs of the combined model (models/combined.py), in the book's order, and the term of each.
TERMS = {"valid_A": adversarial_loss, "valid_B": adversarial_loss, "reconstr_A": cycle_loss,
         "reconstr_B": cycle_loss, "id_A": identity_loss, "id_B": identity_loss}


def generator_loss(targets, outputs, weights):
    """The generators' objective, eq. 3 with the identity term: (total, terms).

        total = lambda_validation (L_GAN(G, D_Y) + L_GAN(F, D_X))      valid_B = d_B(G(a)), valid_A = d_A(F(b))
              + lambda_reconstr (L_cyc(G, F) for a and for b)          reconstr_A = F(G(a)), reconstr_B = G(F(b))
              + lambda_id (L_identity for a and for b)                 id_A = F(a), id_B = G(b)

    targets: by output name (valid_*: ones, reconstr_* and id_*: the real images); outputs: the combined
    model's by the same names; weights: the lambda of each name (CycleGAN.loss_weights). The identity
    terms count only where outputs has them (a training pass with lambda_id == 0 leaves them out).
    terms: the unweighted term of each output computed, by name.
    """
    terms = {name: term(outputs[name], targets[name]) for name, term in TERMS.items() if name in outputs}
    total = sum(weights[name] * value for name, value in terms.items())
    return total, terms


def discriminator_loss(real_scores, fake_scores):
    """A discriminator's objective, LSGAN: 1/2 (mean (D(real) - 1)^2 + mean D(fake)^2) (section 7.1's 1/2)."""
    return 0.5 * (adversarial_loss(real_scores, REAL) + adversarial_loss(fake_scores, FAKE))


@keras.saving.register_keras_serializable(package="cyclegan")   # a discriminator saved compiled loads again
def discriminator_loss_per_image(targets, scores):
    """`discriminator_loss` as the discriminators are compiled with it: one value per image, whose batch mean
    (Keras' reduction) is 1/2 (mean over the reals + mean over the fakes).

    targets: REAL (1) on a real image's patches, FAKE (0) on a fake's. Each image's mean squared error is
    weighted by batch / (kinds x images of its kind), so the batch's order and mix do not matter: CycleGAN.
    train_step gives [reals; fakes] (kinds = 2, the paper's one update on the halved sum), a batch of one kind
    (the book's `d_A.train_on_batch(imgs_A, valid)`) is that kind's mean squared error, and data parallel,
    where a replica may hold one kind only, averages to the same step.
    """
    targets, scores = _f32(targets), _f32(scores)
    axes = tuple(range(1, len(scores.shape)))
    per_image = ops.mean(ops.square(scores - targets), axis=axes)                  # (batch,)
    real = ops.cast(ops.mean(targets, axis=axes) > 0.5, "float32")                 # 1 for a real image
    n = ops.cast(ops.shape(scores)[0], "float32")
    n_real = ops.sum(real)
    n_fake = n - n_real
    kinds = ops.cast(n_real > 0, "float32") + ops.cast(n_fake > 0, "float32")
    of_its_kind = real * n_real + (1.0 - real) * n_fake
    return per_image * n / (kinds * ops.maximum(of_its_kind, 1.0))
