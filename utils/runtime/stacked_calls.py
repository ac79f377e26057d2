"""The combined model's six translations in three generator calls, each on a stacked batch: a speed-up.

models/combined.py translates with six separate calls, as the paper reads. Where `stack_generator_calls()`
(utils/runtime/onednn.py) says so, TensorFlow's oneDNN on an x86 CPU without AVX-512, it calls this instead:
g_AB on [img_A; img_B] (fake_B and id_B), g_BA on [img_B; fake_B; img_A] (fake_A, reconstr_A and id_A), then
g_AB on fake_A (reconstr_B). The generators hold no batch statistics (instance norm is per image), so the
numbers are those of the six separate calls (tests/test_cyclegan.py). There oneDNN runs a batch of one
through a slow im2col + GEMM kernel and a stacked batch through its direct one
(docs/speed.md#stacked-generator-calls).
"""

from keras import ops


def stacked_translations(g_AB, g_BA, img_A, img_B, identity, training):
    """{'fake_A', 'fake_B', 'reconstr_A', 'reconstr_B'} (+ 'id_A', 'id_B' with identity) in three calls."""
    real_for_AB = [img_A, img_B] if identity else [img_A]
    fake_B, *id_B = ops.split(g_AB(ops.concatenate(real_for_AB, axis=0), training=training),
                              len(real_for_AB), axis=0)                  # A -> B; B -> B (identity)
    for_BA = [img_B, fake_B, img_A] if identity else [img_B, fake_B]
    fake_A, reconstr_A, *id_A = ops.split(g_BA(ops.concatenate(for_BA, axis=0), training=training),
                                          len(for_BA), axis=0)          # B -> A; A -> B -> A; A -> A
    outputs = {"fake_A": fake_A, "fake_B": fake_B, "reconstr_A": reconstr_A,
               "reconstr_B": g_AB(fake_A, training=training)}            # B -> A -> B
    if identity:
        outputs["id_A"], outputs["id_B"] = id_A[0], id_B[0]               # g_BA(img_A), g_AB(img_B)
    return outputs
