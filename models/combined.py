"""The combined generator model (book Example 5-5) that trains both generators at once.

It takes {'img_A', 'img_B'} and returns six named outputs, each compared to a target by a loss:

    valid_A    = d_A(g_BA(img_B))          mse  vs 1      adversarial, LSGAN (paper eq. 1 with L2)
    valid_B    = d_B(g_AB(img_A))          mse  vs 1
    reconstr_A = g_BA(g_AB(img_A))         mae  vs img_A  cycle consistency (paper eq. 2)
    reconstr_B = g_AB(g_BA(img_B))         mae  vs img_B
    id_A       = g_BA(img_A)               mae  vs img_A  identity (paper section 5.2, "L_identity")
    id_B       = g_AB(img_B)               mae  vs img_B

Why a subclass, and three things it does that the book's functional model does not:

1. The freeze. The book sets `d.trainable = False` before compiling this model. In Keras 3 that
   flag is read when a model's train function is first traced, so it silently freezes a
   discriminator forever if its own first `train_on_batch` runs while frozen, and any retrace
   captures whatever the flag is at that moment. Here the flag is never touched: this model's
   trainable variables are, by construction, only the generators'; the discriminators' weights
   are its non-trainable state (read, never updated, by its steps). The same two lists are the
   state that JAX's stateless train step carries, so every backend trains the same networks.
2. No second forward pass. The book computes fake_A and fake_B once to train the discriminators
   and again inside this model. Here one training step of this model also hands back the two
   fakes (in its logs, as 'fake_A' and 'fake_B'), so `CycleGAN.train_step` trains the
   discriminators on them without translating again (the official code's order: G, then D).
3. No wasted identity branch. With lambda_id == 0 the two identity passes (a third of the
   generator work) are not computed at all; their losses are reported as 0.
"""

import keras
from keras import ops

OUTPUT_NAMES = ("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B")
OUTPUT_LOSSES = {"valid_A": "mse", "valid_B": "mse", "reconstr_A": "mae", "reconstr_B": "mae",
                 "id_A": "mae", "id_B": "mae"}
IDENTITY_NAMES = ("id_A", "id_B")


def _mean_error(kind, target, output):
    """Mean squared ('mse') or absolute ('mae') error over the whole batch, in float32."""
    diff = ops.cast(output, "float32") - ops.cast(target, "float32")
    return ops.mean(ops.square(diff)) if kind == "mse" else ops.mean(ops.abs(diff))


class CombinedGeneratorModel(keras.Model):
    """Six-output model over g_AB, g_BA, d_A, d_B whose optimizer only ever sees g_AB and g_BA.

    Compile it with `compile(optimizer=..., loss_weights={name: weight})` (the six names above);
    the losses are the book's: mse for the two validity outputs, mae for the other four.
    `trace_count` counts how often its forward pass was traced (TF, JAX) or run (PyTorch, eager).
    """

    def __init__(self, g_AB, g_BA, d_A, d_B, name="combined"):
        super().__init__(name=name)
        self.g_AB, self.g_BA, self.d_A, self.d_B = g_AB, g_BA, d_A, d_B
        self.img_shape = tuple(g_AB.input_shape[1:])
        self.output_loss_weights = {name: 1.0 for name in OUTPUT_NAMES}
        self.trace_count = 0

    def compile(self, optimizer="adam", loss_weights=None, **kwargs):
        """Set the optimizer and the weight of each of the six outputs (unknown names are an error)."""
        weights = dict(loss_weights or {})
        unknown = sorted(set(weights) - set(OUTPUT_NAMES))
        if unknown:
            raise ValueError(f"loss_weights names {unknown} are not outputs of the combined model {OUTPUT_NAMES}")
        self.output_loss_weights = {name: float(weights.get(name, 1.0)) for name in OUTPUT_NAMES}
        super().compile(optimizer=optimizer, **kwargs)  # a new train function: the weights are traced in

    @property
    def skips_identity(self):
        return all(self.output_loss_weights[name] == 0 for name in IDENTITY_NAMES)

    def build(self, input_shape=None):
        self.built = True  # the four networks are built already (functional models)

    def call(self, inputs, training=False):
        """inputs: {'img_A', 'img_B'}, each (batch, h, w, c) in [-1, 1] -> dict of the six outputs.

        Identity outputs are left out when their weights are 0. In a training step (training=True)
        the dict also holds fake_A and fake_B, for the discriminators' step.
        """
        self.trace_count += 1
        img_A, img_B = inputs["img_A"], inputs["img_B"]
        fake_B = self.g_AB(img_A, training=training)                  # A -> B: (batch, h, w, c)
        fake_A = self.g_BA(img_B, training=training)                  # B -> A
        outputs = {
            "valid_A": self.d_A(fake_A, training=training),           # (batch, ph, pw, 1) patch scores
            "valid_B": self.d_B(fake_B, training=training),
            "reconstr_A": self.g_BA(fake_B, training=training),       # A -> B -> A
            "reconstr_B": self.g_AB(fake_A, training=training),       # B -> A -> B
        }
        if not self.skips_identity:
            outputs["id_A"] = self.g_BA(img_A, training=training)
            outputs["id_B"] = self.g_AB(img_B, training=training)
        if training:
            outputs["fake_A"], outputs["fake_B"] = fake_A, fake_B
        return outputs

    def loss_terms(self, y, y_pred):
        """The unweighted loss of each output computed in y_pred, by name (float32 scalars)."""
        return {name: _mean_error(OUTPUT_LOSSES[name], y[name], y_pred[name]) for name in OUTPUT_NAMES
                if name in y_pred}

    def weighted_total(self, terms):
        """The loss the optimizer sees: sum of lambda x term (paper eq. 3 with the book's identity term)."""
        return sum(self.output_loss_weights[name] * value for name, value in terms.items())

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Weighted sum of the output losses (paper eq. 3 with the book's identity term)."""
        return self.weighted_total(self.loss_terms(y, y_pred))

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Logs of one step: 'loss', '<output>_loss' for the six outputs, and the fakes if computed."""
        terms = self.loss_terms(y, y_pred)
        logs = {"loss": self.weighted_total(terms)}
        for name in OUTPUT_NAMES:
            logs[f"{name}_loss"] = terms.get(name, ops.zeros((), "float32"))
        for name in ("fake_A", "fake_B"):
            if name in y_pred:
                logs[name] = ops.stop_gradient(y_pred[name])
        return logs

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [w for g in (self.g_AB, self.g_BA) for w in g.trainable_weights]

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
