"""The combined generator model (book Example 5-5) that trains both generators at once.

It takes (img_A, img_B) and returns six named outputs, each compared to a target by a loss:

    valid_A    = d_A(g_BA(img_B))          mse  vs 1      adversarial, LSGAN (paper eq. 1 with L2)
    valid_B    = d_B(g_AB(img_A))          mse  vs 1
    reconstr_A = g_BA(g_AB(img_A))         mae  vs img_A  cycle consistency (paper eq. 2)
    reconstr_B = g_AB(g_BA(img_B))         mae  vs img_B
    id_A       = g_BA(img_A)               mae  vs img_A  identity (paper section 5.2, "L_identity")
    id_B       = g_AB(img_B)               mae  vs img_B

Why a subclass: the book freezes the discriminators with `d.trainable = False` before compiling
this model. In Keras 3 that flag is read when a model's train function is first traced, so it
silently freezes a discriminator forever if its own first `train_on_batch` runs while frozen, and
any retrace (a new batch size) captures whatever the flag is at that moment. Here the flag is never
touched: this model's trainable weights are, by construction, only the generators' weights, and
the discriminators' weights are its non-trainable state (read, never updated, by its steps).
"""

import keras
from keras import layers

OUTPUT_NAMES = ("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B")
OUTPUT_LOSSES = {"valid_A": "mse", "valid_B": "mse", "reconstr_A": "mae", "reconstr_B": "mae",
                 "id_A": "mae", "id_B": "mae"}


class CombinedGeneratorModel(keras.Model):
    """Six-output model over g_AB, g_BA, d_A, d_B whose optimizer only ever sees g_AB and g_BA."""

    def __init__(self, g_AB, g_BA, d_A, d_B, name="combined"):
        img_shape = tuple(g_AB.input_shape[1:])
        img_A = keras.Input(shape=img_shape, name="img_A")
        img_B = keras.Input(shape=img_shape, name="img_B")
        fake_B = g_AB(img_A)      # A -> B
        fake_A = g_BA(img_B)      # B -> A
        tensors = {
            "valid_A": d_A(fake_A),
            "valid_B": d_B(fake_B),
            "reconstr_A": g_BA(fake_B),  # A -> B -> A
            "reconstr_B": g_AB(fake_A),  # B -> A -> B
            "id_A": g_BA(img_A),
            "id_B": g_AB(img_B),
        }
        # Identity layers give the outputs their names (the losses are read by these names).
        outputs = {key: layers.Activation("linear", dtype="float32", name=key)(tensors[key]) for key in OUTPUT_NAMES}
        super().__init__(inputs={"img_A": img_A, "img_B": img_B}, outputs=outputs, name=name)
        self.generator_names = (g_AB.name, g_BA.name)

    def _generators(self):
        return [self.get_layer(name) for name in self.generator_names]

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for g in self._generators() for w in g.trainable_weights]

    @property
    def trainable_variables(self):
        return self.trainable_weights

    @property
    def non_trainable_weights(self):
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    @property
    def non_trainable_variables(self):
        trainable = {id(v) for v in self.trainable_variables}
        return [v for v in self.variables if id(v) not in trainable]
