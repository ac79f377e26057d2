"""The combined generator model (book Example 5-5) that trains both generators at once.

It takes {'img_A', 'img_B'} and returns six named outputs, each compared to a target by its loss
(models/losses.py):

    valid_A    = d_A(g_BA(img_B))          vs 1       adversarial_loss (paper eq. 1, least squares)
    valid_B    = d_B(g_AB(img_A))          vs 1
    reconstr_A = g_BA(g_AB(img_A))         vs img_A   cycle_loss (eq. 2)
    reconstr_B = g_AB(g_BA(img_B))         vs img_B
    id_A       = g_BA(img_A)               vs img_A   identity_loss (section 5.2)
    id_B       = g_AB(img_B)               vs img_B

and Keras minimises their weighted sum, `losses.generator_loss` (eq. 3), over the generators' weights only.

What it does that the book's functional model does not:

1. The freeze. The book sets `d.trainable = False` before compiling this model. In Keras 3 that flag is
   read when a train function is first traced, so it silently freezes a discriminator forever if its own
   first `train_on_batch` runs while frozen. Here the flag is never touched: this model's trainable
   variables are, by construction, only the generators'; the discriminators' weights are state it reads.
2. One forward pass. A training step hands back its fakes, `train_generators(img_A, img_B, valid) ->
   (losses, fake_A, fake_B)`, and `CycleGAN.train_step` trains the discriminators on them without
   translating again (the official code's order: G, then D).
3. With lambda_id == 0 the two identity passes are not computed in a training step (reported as 0).
4. With `stack_calls` the six translations run as three stacked calls, the same numbers faster on some
   CPUs (utils/runtime/stacked_calls.py; why: docs/speed.md#stacked-generator-calls). The book's positional
   calls go through models/book_calls.py.
With `diff_augment` (models/augment.py) d_A and d_B augment their input in training; the fakes handed
back are not augmented.
"""

import keras
import numpy as np
from keras import ops

from models.book_calls import OUTPUT_NAMES, BookPositionalCalls, named_inputs
from models.losses import generator_loss
from utils.runtime.stacked_calls import stacked_translations

IDENTITY_NAMES = ("id_A", "id_B")
FAKE_NAMES = ("fake_A", "fake_B")   # the generators' outputs of a training step, for the discriminators


class CombinedGeneratorModel(BookPositionalCalls, keras.Model):
    """Six-output model over g_AB, g_BA, d_A, d_B whose optimizer only ever sees g_AB and g_BA.

    Compile it with `compile(optimizer=..., loss_weights={name: weight})` (the six names above); the loss
    is `losses.generator_loss` with those weights.
    `trace_count` counts how often its forward pass was traced (TF, JAX) or run (PyTorch, eager).
    """

    def __init__(self, g_AB, g_BA, d_A, d_B, stack_calls=False, name="combined"):
        super().__init__(name=name)
        self.stack_calls = stack_calls   # 4. in the module docstring: the same outputs in three stacked calls
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

    def train_generators(self, img_A, img_B, valid, train_on_batch=None):
        """One step of both generators (the book's `combined.train_on_batch`, Example 5-6) that also
        hands back that step's fakes: (losses, fake_A, fake_B).

        img_A, img_B: real batches (batch, h, w, c) in [-1, 1]; valid: the discriminators' "real"
        targets (batch, ph, pw, 1) of ones. losses: 'loss' (the weighted total, eq. 3) and the
        unweighted term of each output by name, as floats. fake_A = g_BA(img_B), fake_B = g_AB(img_A),
        computed before the update. train_on_batch(model, x, y) -> logs runs the step (an executor's,
        utils/runtime/executor.py); default this model's own.

        Keras 3 has no backend-neutral way to return tensors from a train step but its logs, so the fakes
        leave it as two per-image logs (`compute_metrics`), checked here at every step: a Keras that drops
        or averages them stops the run instead of training the discriminators on wrong images.
        """
        targets = {"valid_A": valid, "valid_B": valid, "reconstr_A": img_A, "reconstr_B": img_B,
                   "id_A": img_A, "id_B": img_B}
        run = train_on_batch or (lambda model, x, y: model.train_on_batch(x, y, return_dict=True))
        logs = run(self, {"img_A": img_A, "img_B": img_B}, targets)
        fakes = [np.asarray(logs.get(name)) for name in FAKE_NAMES]
        expected = np.shape(img_A)
        if any(fake.shape != expected for fake in fakes):
            found = {name: np.shape(logs.get(name)) for name in FAKE_NAMES}
            raise RuntimeError(f"the combined model's training step returned the fakes with shapes {found}, not "
                               f"{expected}: this Keras ({keras.__version__}) changed how train_on_batch returns "
                               "per-image logs; install the pinned keras (requirements.txt)")
        losses = {"loss": float(logs["loss"])}
        losses.update({name: float(logs[f"{name}_loss"]) for name in OUTPUT_NAMES})
        return losses, fakes[0], fakes[1]

    def call(self, inputs, training=False):
        """inputs: {'img_A', 'img_B'} (or [img_A, img_B]), each (batch, h, w, c) in [-1, 1] -> dict of the outputs.

        In a training step (training=True) the identity outputs are left out when their weights are
        0, and the dict also holds fake_A and fake_B, for the discriminators' step.
        """
        self.trace_count += 1
        inputs = named_inputs(inputs)
        img_A, img_B = inputs["img_A"], inputs["img_B"]
        identity = not (training and self.skips_identity)
        if self.stack_calls:
            outputs = stacked_translations(self.g_AB, self.g_BA, img_A, img_B, identity, training)
        else:
            fake_B = self.g_AB(img_A, training=training)              # A -> B: (batch, h, w, c)
            fake_A = self.g_BA(img_B, training=training)              # B -> A
            outputs = {"fake_A": fake_A, "fake_B": fake_B,
                       "reconstr_A": self.g_BA(fake_B, training=training),   # A -> B -> A
                       "reconstr_B": self.g_AB(fake_A, training=training)}   # B -> A -> B
            if identity:
                outputs["id_A"] = self.g_BA(img_A, training=training)
                outputs["id_B"] = self.g_AB(img_B, training=training)
        fake_A, fake_B = outputs.pop("fake_A"), outputs.pop("fake_B")
        outputs["valid_A"] = self.d_A(fake_A, training=training)     # (batch, ph, pw, 1) patch scores
        outputs["valid_B"] = self.d_B(fake_B, training=training)
        if training:
            outputs["fake_A"], outputs["fake_B"] = fake_A, fake_B
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss Keras differentiates: eq. 3, `losses.generator_loss`."""
        return generator_loss(y, y_pred, self.output_loss_weights)[0]

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Logs of one step: 'loss', '<output>_loss' for the six outputs, and the fakes if computed."""
        total, terms = generator_loss(y, y_pred, self.output_loss_weights)
        logs = {"loss": total}
        for name in OUTPUT_NAMES:
            logs[f"{name}_loss"] = terms.get(name, ops.zeros((), "float32"))
        for name in FAKE_NAMES:
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
