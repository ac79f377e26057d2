"""The combined generator model (book Example 5-5) that trains both generators at once.

It takes {'img_A', 'img_B'} and returns six named outputs, each compared to a target:

    valid_A    = d_A(g_BA(img_B))          vs 1       adversarial, LSGAN (paper eq. 1 with least squares)
    valid_B    = d_B(g_AB(img_A))          vs 1
    reconstr_A = g_BA(g_AB(img_A))         vs img_A   cycle consistency (paper eq. 2)
    reconstr_B = g_AB(g_BA(img_B))         vs img_B
    id_A       = g_BA(img_A)               vs img_A   identity (paper section 5.2, "L_identity")
    id_B       = g_AB(img_B)               vs img_B

With `diff_augment` (models/augment.py) d_A and d_B augment their input when called with training=True,
so in a training step valid_A and valid_B score augmented fakes and the generators' gradient passes
through the augmentation; the fakes handed back (below) are not augmented.

The generators' objective (paper eq. 3 plus the identity term) is written out, term by term, in
one method: `CombinedGeneratorModel.generator_objective`. The discriminators' objective is in
`CycleGAN.train_step` (models/cyclegan.py).

Why a subclass, and four things it does that the book's functional model does not:

1. The freeze. The book sets `d.trainable = False` before compiling this model. In Keras 3 that
   flag is read when a model's train function is first traced, so it silently freezes a
   discriminator forever if its own first `train_on_batch` runs while frozen, and any retrace
   captures whatever the flag is at that moment. Here the flag is never touched: this model's
   trainable variables are, by construction, only the generators'; the discriminators' weights
   are its non-trainable state (read, never updated, by its steps). The same two lists are the
   state that JAX's stateless train step carries, so every backend trains the same networks.
2. No second forward pass. The book computes fake_A and fake_B once to train the discriminators
   and again inside this model. Here one training step of this model also hands back the two
   fakes: `train_generators(img_A, img_B, valid) -> (losses, fake_A, fake_B)`, so
   `CycleGAN.train_step` trains the discriminators on them without translating again (the
   official code's order: G, then D).
3. No wasted identity branch. With lambda_id == 0 the two identity passes (a third of the
   generator work) are not computed at all in a training step; their losses are reported as 0.
4. Stacked batches where they are faster (`stack_calls`, chosen by models/onednn.stack_generator_calls:
   TensorFlow's oneDNN on a CPU without AVX-512). g_AB translates img_A (fake_B) and img_B (id_B) in
   one call on the two stacked; then g_BA translates img_B (fake_A), fake_B (reconstr_A) and img_A
   (id_A) in one call; then g_AB translates fake_A (reconstr_B). The generators hold no batch
   statistics (instance norm is per image), so the numbers are those of six separate calls (tested).
   There oneDNN runs a batch of one through a slow im2col + GEMM kernel and a stacked batch through
   its direct one: the ResNet-9 step is 1.26x faster; with AVX-512 it is 10 % slower, so it stays off
   (docs/speed.md).

The book's positional calls work too and take the same path: `train_on_batch([imgs_A, imgs_B],
[valid, valid, imgs_A, imgs_B, imgs_A, imgs_B])` and `predict([imgs_A, imgs_B])` are turned into
the named form (inputs A, B; targets and predictions in the order of OUTPUT_NAMES, the book's)
before Keras sees them, so they run the very train function the named calls run. Positional
`train_on_batch` returns the book's list: [total, valid_A, valid_B, reconstr_A, reconstr_B, id_A, id_B].
"""

import keras
import numpy as np
from keras import ops

OUTPUT_NAMES = ("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B")
IDENTITY_NAMES = ("id_A", "id_B")
FAKE_NAMES = ("fake_A", "fake_B")   # the generators' outputs of a training step, for the discriminators


def _named_inputs(x):
    """{'img_A', 'img_B'} from the book's positional [imgs_A, imgs_B] (a dict passes through)."""
    if isinstance(x, dict):
        return x
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return {"img_A": x[0], "img_B": x[1]}
    raise ValueError("the combined model takes [imgs_A, imgs_B] or {'img_A': ..., 'img_B': ...}, "
                     f"got {type(x).__name__}" + (f" of {len(x)} items" if isinstance(x, (list, tuple)) else ""))


def _named_targets(y):
    """{output name: target} from the book's six positional targets (a dict or None passes through)."""
    if y is None or isinstance(y, dict):
        return y
    if isinstance(y, (list, tuple)) and len(y) == len(OUTPUT_NAMES):
        return dict(zip(OUTPUT_NAMES, y))
    raise ValueError(f"the combined model takes six targets in the order {list(OUTPUT_NAMES)} (the book's "
                     f"[valid, valid, imgs_A, imgs_B, imgs_A, imgs_B]) or a dict by those names, got "
                     f"{type(y).__name__}" + (f" of {len(y)} items" if isinstance(y, (list, tuple)) else ""))


class CombinedGeneratorModel(keras.Model):
    """Six-output model over g_AB, g_BA, d_A, d_B whose optimizer only ever sees g_AB and g_BA.

    Compile it with `compile(optimizer=..., loss_weights={name: weight})` (the six names above);
    the losses are the book's: mse for the two validity outputs, mae for the other four, written
    out in `generator_objective`.
    `trace_count` counts how often its forward pass was traced (TF, JAX) or run (PyTorch, eager).
    """

    def __init__(self, g_AB, g_BA, d_A, d_B, stack_calls=False, name="combined"):
        super().__init__(name=name)
        self.stack_calls = stack_calls   # 4. in the module docstring
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

        The fakes leave Keras' train function as two per-image logs (`compute_metrics`), which Keras
        3.15 (pinned in requirements.txt) returns as they are. They are checked at every step, so a
        Keras that drops or averages them stops here instead of training the discriminators on
        wrong images (tests/test_cyclegan.py also checks them against the generators).
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

    # The book's positional forms, turned into the named ones before Keras traces anything.
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One generator step; positional form returns the book's [total, six output losses]."""
        logs = super().train_on_batch(_named_inputs(x), _named_targets(y), sample_weight=sample_weight,
                                      class_weight=class_weight, return_dict=True)
        return logs if return_dict else [logs["loss"]] + [logs[f"{name}_loss"] for name in OUTPUT_NAMES]

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The losses of one batch without training; positional form as in train_on_batch."""
        logs = super().test_on_batch(_named_inputs(x), _named_targets(y), sample_weight=sample_weight,
                                     return_dict=True)
        return logs if return_dict else [logs["loss"]] + [logs[f"{name}_loss"] for name in OUTPUT_NAMES]

    def predict(self, x, *args, **kwargs):
        """The six outputs: a dict for named inputs, the book's list (OUTPUT_NAMES order) for [A, B]."""
        outputs = super().predict(_named_inputs(x), *args, **kwargs)
        return outputs if isinstance(x, dict) else [outputs[name] for name in OUTPUT_NAMES]

    def predict_on_batch(self, x):
        outputs = super().predict_on_batch(_named_inputs(x))
        return outputs if isinstance(x, dict) else [outputs[name] for name in OUTPUT_NAMES]

    def call(self, inputs, training=False):
        """inputs: {'img_A', 'img_B'} (or [img_A, img_B]), each (batch, h, w, c) in [-1, 1] -> dict of the outputs.

        In a training step (training=True) the identity outputs are left out when their weights are
        0, and the dict also holds fake_A and fake_B, for the discriminators' step.
        """
        self.trace_count += 1
        inputs = _named_inputs(inputs)
        img_A, img_B = inputs["img_A"], inputs["img_B"]
        identity = not (training and self.skips_identity)
        if self.stack_calls:
            outputs = self._stacked_translations(img_A, img_B, identity, training)
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

    def _stacked_translations(self, img_A, img_B, identity, training):
        """The same translations in three calls (4. in the module docstring): g_AB on [img_A; img_B],
        g_BA on [img_B; fake_B; img_A], g_AB on fake_A."""
        real_for_AB = [img_A, img_B] if identity else [img_A]
        fake_B, *id_B = ops.split(self.g_AB(ops.concatenate(real_for_AB, axis=0), training=training),
                                  len(real_for_AB), axis=0)                  # A -> B; B -> B (identity)
        for_BA = [img_B, fake_B, img_A] if identity else [img_B, fake_B]
        fake_A, reconstr_A, *id_A = ops.split(self.g_BA(ops.concatenate(for_BA, axis=0), training=training),
                                              len(for_BA), axis=0)          # B -> A; A -> B -> A; A -> A
        outputs = {"fake_A": fake_A, "fake_B": fake_B, "reconstr_A": reconstr_A,
                   "reconstr_B": self.g_AB(fake_A, training=training)}       # B -> A -> B
        if identity:
            outputs["id_A"], outputs["id_B"] = id_A[0], id_B[0]               # g_BA(img_A), g_AB(img_B)
        return outputs

    def generator_objective(self, y, y_pred):
        """The generators' objective, the paper's eq. 3 with the identity term: (total, terms).

        y: the targets by output name (valid_*: ones, reconstr_* and id_*: the real images);
        y_pred: this model's outputs (`call`). Each term is a mean over every element of the batch
        (pixels, or patch scores for valid_*), in float32 also under mixed precision. terms: the
        unweighted terms by output name (without id_A, id_B when they were not computed: lambda_id
        == 0 in a training step). total: the weighted sum the optimizer minimises.
        Here a = img_A, b = img_B; the paper's G, F, D_X, D_Y are g_AB, g_BA, d_A, d_B.
        """
        y = _named_targets(y)

        def pred(name):     # an output, in float32
            return ops.cast(y_pred[name], "float32")

        def target(name):   # its target, in float32
            return ops.cast(y[name], "float32")

        terms = {}
        # Adversarial, LSGAN (eq. 1 with least squares, section 4): G minimises E[(D(G(x)) - 1)^2]
        terms["valid_A"] = ops.mean(ops.square(pred("valid_A") - target("valid_A")))        # (d_A(g_BA(b)) - 1)^2
        terms["valid_B"] = ops.mean(ops.square(pred("valid_B") - target("valid_B")))        # (d_B(g_AB(a)) - 1)^2
        # Cycle consistency (eq. 2), L1: E[|F(G(x)) - x|] + E[|G(F(y)) - y|]
        terms["reconstr_A"] = ops.mean(ops.abs(pred("reconstr_A") - target("reconstr_A")))  # |g_BA(g_AB(a)) - a|
        terms["reconstr_B"] = ops.mean(ops.abs(pred("reconstr_B") - target("reconstr_B")))  # |g_AB(g_BA(b)) - b|
        # Identity (section 5.2), L1: E[|F(x) - x|] + E[|G(y) - y|]; not computed when lambda_id == 0
        if "id_A" in y_pred:
            terms["id_A"] = ops.mean(ops.abs(pred("id_A") - target("id_A")))                # |g_BA(a) - a|
            terms["id_B"] = ops.mean(ops.abs(pred("id_B") - target("id_B")))                # |g_AB(b) - b|

        # Total, eq. 3 + identity: L = L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda L_cyc(G, F) + lambda_id L_identity.
        # The lambdas are compile(loss_weights=...), i.e. CycleGAN.loss_weights: lambda_validation for
        # valid_* (the paper's 1), lambda_reconstr for reconstr_* (the paper's lambda), lambda_id for id_*.
        lam = self.output_loss_weights
        total = (lam["valid_A"] * terms["valid_A"] + lam["valid_B"] * terms["valid_B"]
                 + lam["reconstr_A"] * terms["reconstr_A"] + lam["reconstr_B"] * terms["reconstr_B"])
        if "id_A" in terms:
            total = total + lam["id_A"] * terms["id_A"] + lam["id_B"] * terms["id_B"]
        return total, terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss Keras differentiates: the total of `generator_objective`."""
        return self.generator_objective(y, y_pred)[0]

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Logs of one step: 'loss', '<output>_loss' for the six outputs, and the fakes if computed."""
        total, terms = self.generator_objective(y, y_pred)
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
