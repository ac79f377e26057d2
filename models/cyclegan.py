"""The `CycleGAN` class: two generators, two discriminators and their training step.

Paper: Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017. Book: D. Foster, "Generative Deep Learning", chapter 5 (Examples 5-1..5-6).

Names (book -> paper):

    g_AB               G: X -> Y         generator A -> B (e.g. apple -> orange)
    g_BA               F: Y -> X         generator B -> A
    d_A                D_X               tells real A images from g_BA's fakes
    d_B                D_Y               tells real B images from g_AB's fakes
    lambda_validation  (1 in eq. 3)      weight of the adversarial terms, LSGAN (section 4)
    lambda_reconstr    lambda (eq. 3)    weight of the cycle-consistency terms (eq. 2), paper: 10
    lambda_id          identity weight   absolute weight of the identity terms (section 5.2);
                                         the official code's 0.5 is relative: 0.5 x lambda = 5

Losses (models/losses.py, by name): the generators minimise `generator_loss` (eq. 3: LSGAN
adversarial terms, L1 cycle and identity terms, weighted by the lambdas) through the combined model;
each discriminator minimises `discriminator_loss`, 1/2 (E[(D(real) - 1)^2] + E[D(fake)^2]).
`train_step` below is the paper's step, in the official code's order. The book's own methods (train,
train_discriminators, train_generators, sample_images, save, ...) are in models/book_methods.py.
"""

import dataclasses
import warnings

import keras
import numpy as np

from models.book_methods import BookMethods
from models.combined import CombinedGeneratorModel
from models.config import CycleGANConfig, patch_size
from models.directions import GENERATORS, check_direction
from models.discriminator import build_patchgan_discriminator
from models.generators import build_resnet_generator, build_unet_generator, run_generator
from models.image_pool import ImagePool
from models.losses import FAKE, REAL, discriminator_loss_per_image
from models.lr_schedule import learning_rate_at
from utils.runtime import devices
from utils.runtime.executor import make_executor
from utils.runtime.onednn import slow_training_kernels, stack_generator_calls


class CycleGAN(BookMethods):
    """Builds, compiles and trains a CycleGAN with `train_on_batch` (book Examples 5-1 to 5-6).

    Constructor arguments are the fields of `CycleGANConfig` (book names and defaults, plus the
    paper's options), e.g. `CycleGAN(input_dim=(128, 128, 3), generator_type='unet', lambda_id=2)`.

    Attributes: g_AB, g_BA (generators), d_A, d_B (discriminators, compiled with losses.discriminator_loss_per_image), combined
    (six-output generator model, see models/combined.py), pool_A / pool_B (histories of fakes),
    executor (where the steps run: one device or data parallel, utils/runtime/executor.py), n_devices,
    epoch / batch / step (training position, set by the training loop and saved in checkpoints),
    g_losses / d_losses (the book's loss histories, filled by the book's `train`: models/book_methods.py).
    """

    def __init__(self, config=None, **kwargs):
        if config is not None and kwargs:
            raise ValueError("pass either a CycleGANConfig or keyword settings, not both")
        self.config = config if config is not None else CycleGANConfig(**kwargs)
        # Mixed precision: layers compute in float16 or bfloat16 and keep float32 weights; losses are
        # float32. True resolves to the device's fast type (utils/runtime/devices.py); the config keeps the choice.
        self.compute_dtype = devices.mixed_precision_dtype(self.config.mixed_precision)
        if self.config.mixed_precision is True:   # on a CPU without bfloat16 instructions: float32 (False)
            self.config = dataclasses.replace(self.config, mixed_precision=self.compute_dtype or False)
        cfg = self.config
        hint = slow_training_kernels()
        if hint:
            warnings.warn(hint, stacklevel=2)
        keras.utils.set_random_seed(cfg.seed)  # the same seed gives the same initial weights

        self.img_shape = cfg.input_dim
        self.disc_patch = (patch_size(cfg.input_dim[0], cfg.disc_n_layers),
                           patch_size(cfg.input_dim[1], cfg.disc_n_layers), 1)
        policy = f"mixed_{self.compute_dtype}" if self.compute_dtype else keras.config.dtype_policy().name
        previous_policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        # data_parallel: networks, optimizers and train functions are made under the backend's
        # distribution engine; one device: a no-op (utils/runtime/executor.py).
        self.executor = make_executor(cfg.data_parallel)
        self.n_devices = self.executor.n_devices
        try:
            with self.executor.scope():
                self._build_and_compile()
        finally:
            keras.config.set_dtype_policy(previous_policy)

        self.pool_A = ImagePool(cfg.buffer_max_length, seed=[cfg.seed, 0])  # fakes of domain A
        self.pool_B = ImagePool(cfg.buffer_max_length, seed=[cfg.seed, 1])
        self.epoch, self.batch, self.step = 0, 0, 0
        self.g_losses, self.d_losses = [], []   # the book's histories (BookMethods.record)
        self._targets = {}

    # ----------------------------------------------------------------- building
    def _build_and_compile(self):
        cfg = self.config
        self.g_AB = self._build_generator("g_AB")
        self.g_BA = self._build_generator("g_BA")
        # With cfg.diff_augment each discriminator starts with DiffAugment (models/augment.py): every image
        # it sees in training, in its own step and in the combined model's, is augmented; predict is not.
        self.d_A = build_patchgan_discriminator(cfg.input_dim, cfg.disc_n_filters, name="d_A",
                                                diff_augment=cfg.diff_augment, n_layers=cfg.disc_n_layers)
        self.d_B = build_patchgan_discriminator(cfg.input_dim, cfg.disc_n_filters, name="d_B",
                                                diff_augment=cfg.diff_augment, n_layers=cfg.disc_n_layers)

        # Discriminators: LSGAN, 1/2 (real + fake) (models/losses.py), one Adam each (Example 5-4).
        # They stay trainable for good.
        for d in (self.d_A, self.d_B):
            d.compile(loss=discriminator_loss_per_image, optimizer=self._adam(), jit_compile=cfg.jit_compile)
        # Generators: trained through the combined model, whose trainable weights are only theirs.
        self.combined = CombinedGeneratorModel(self.g_AB, self.g_BA, self.d_A, self.d_B,
                                               stack_calls=stack_generator_calls())
        self.combined_optimizer = self._adam()
        self.compile_combined()
        self.build_optimizers()

    def build_optimizers(self):
        """Create each optimizer's variables (moments, iterations) now, not inside the first step.

        A TensorFlow train function that creates variables is traced twice on its first call
        (once to create them, once more without): building them here halves the first step.
        """
        trainables = {"d_A": self.d_A.trainable_variables, "d_B": self.d_B.trainable_variables,
                      "combined": self.combined.trainable_variables}
        for name, optimizer in self.optimizers.items():
            if not optimizer.built:
                optimizer.build(trainables[name])

    def _build_generator(self, name):
        cfg = self.config
        if cfg.generator_type == "unet":
            return build_unet_generator(cfg.input_dim, cfg.gen_n_filters, name=name, upsampling=cfg.unet_upsampling)
        return build_resnet_generator(cfg.input_dim, cfg.gen_n_filters, cfg.n_resnet_blocks, name=name,
                                      upsampling=cfg.resnet_upsampling)

    def _adam(self):
        cfg = self.config
        adam = keras.optimizers.Adam(learning_rate=cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        if self.compute_dtype == "float16":
            # float16 gradients underflow to 0 below 6e-8: the loss is scaled up before the backward pass
            # and the gradients scaled back down; the scale halves on inf/NaN (that step is skipped) and
            # doubles after 2,000 finite steps. Its state is optimizer variables, saved in checkpoints.
            return keras.optimizers.LossScaleOptimizer(adam)
        return adam

    @property
    def loss_weights(self):
        """The weight of each combined output, by name (book Example 5-5)."""
        cfg = self.config
        return {"valid_A": cfg.lambda_validation, "valid_B": cfg.lambda_validation,
                "reconstr_A": cfg.lambda_reconstr, "reconstr_B": cfg.lambda_reconstr,
                "id_A": cfg.lambda_id, "id_B": cfg.lambda_id}

    def compile_combined(self):
        """(Re)compile the combined model with the config's loss weights (after a change or a load).

        The same optimizer object on every compile, so its state survives a change of weights."""
        with self.executor.scope():
            self.combined.compile(loss_weights=self.loss_weights, optimizer=self.combined_optimizer,
                                  jit_compile=self.config.jit_compile)

    def set_loss_weights(self, lambda_validation=None, lambda_reconstr=None, lambda_id=None):
        """Change loss weights between runs or mid-run (ablations); recompiles the combined model only."""
        changes = {"lambda_validation": lambda_validation, "lambda_reconstr": lambda_reconstr,
                   "lambda_id": lambda_id}
        for name, value in changes.items():
            if value is not None:
                setattr(self.config, name, float(value))
        self.config.validate()
        self.compile_combined()

    @property
    def optimizers(self):
        return {"d_A": self.d_A.optimizer, "d_B": self.d_B.optimizer, "combined": self.combined_optimizer}

    def set_learning_rate(self, progress):
        """Set all three optimizers' rate for `progress` epochs done (paper schedule, models/lr_schedule.py)."""
        cfg = self.config
        lr = learning_rate_at(progress, cfg.learning_rate, cfg.epochs, cfg.decay_epochs)
        for optimizer in self.optimizers.values():
            optimizer.learning_rate = lr
        return lr

    @property
    def learning_rate(self):
        return float(keras.ops.convert_to_numpy(self.combined_optimizer.learning_rate))

    # ----------------------------------------------------------------- training
    def _real_fake_targets(self, batch_size):
        """LSGAN targets for one patch map per image: ones for real, zeros for fake (Example 5-6)."""
        if batch_size not in self._targets:
            shape = (batch_size,) + self.disc_patch
            self._targets[batch_size] = (np.full(shape, REAL, np.float32), np.full(shape, FAKE, np.float32))
        return self._targets[batch_size]

    def train_step(self, imgs_A, imgs_B):
        """One training step on a batch of each domain, (batch, h, w, c) in [-1, 1].

        The official code's update order (`optimize_parameters`): generators, then discriminators.
        1. Train both generators with the combined model on models/losses.generator_loss: valid -> 1,
           reconstr -> input, id -> input, weighted by the lambdas. Only generator weights change.
           The same pass hands back its fakes, fake_B = g_AB(imgs_A) and fake_A = g_BA(imgs_B).
        2. Draw the fakes the discriminators see from the history pools (paper section 4).
        3. Train d_A on [real A; pooled fake A] with targets [1; 0], one Adam step on the paper's
           (L_real + L_fake) / 2 (models/losses.discriminator_loss); the same for d_B.
        With diff_augment on, the discriminators see every image of steps 1 and 3 through DiffAugment
        (their first layer, models/augment.py); the pools keep the fakes as the generators made them.
        Each fake is computed once per step (the book translates twice: for D, then in combined).
        Every call runs through `self.executor` (one device, or the batch split across several).

        Returns the losses by name: d_A, d_B, d_loss (their mean), g_loss (weighted total) and
        the unweighted valid_A, valid_B, reconstr_A, reconstr_B, id_A, id_B (id_* are 0 and not
        computed when lambda_id == 0).
        """
        imgs_A, imgs_B = self.executor.even_batches(*self._checked_batches(imgs_A, imgs_B))
        valid, fake = self._real_fake_targets(len(imgs_A))

        # 1. Both generators, one step on losses.generator_loss (eq. 3); it hands back this pass's fakes.
        g_losses, fake_A, fake_B = self.combined.train_generators(imgs_A, imgs_B, valid, self.executor.train_on_batch)
        # 2. The fakes the discriminators see: drawn from the 50-image histories (paper section 4).
        fake_A, fake_B = self.pool_A.query(fake_A), self.pool_B.query(fake_B)
        # 3. Each discriminator, one step on losses.discriminator_loss over [reals; fakes] with targets
        #    [1; 0]: 1/2 (mean (d_A(a) - 1)^2 + mean d_A(F(b))^2), the same for d_B with b and G(a).
        targets = np.concatenate([valid, fake])
        d_A_loss = self.executor.train_on_batch(self.d_A, np.concatenate([imgs_A, fake_A]), targets)["loss"]
        d_B_loss = self.executor.train_on_batch(self.d_B, np.concatenate([imgs_B, fake_B]), targets)["loss"]

        self.step += 1
        losses = {"d_A": float(d_A_loss), "d_B": float(d_B_loss)}
        losses["d_loss"] = 0.5 * (losses["d_A"] + losses["d_B"])
        losses["g_loss"] = g_losses.pop("loss")
        return {**losses, **g_losses}

    def _checked_batches(self, imgs_A, imgs_B):
        imgs_A, imgs_B = np.asarray(imgs_A, np.float32), np.asarray(imgs_B, np.float32)
        if imgs_A.shape != imgs_B.shape or imgs_A.shape[1:] != self.img_shape:
            raise ValueError(f"train_step expects two batches of shape (batch,) + {self.img_shape}, "
                             f"got {imgs_A.shape} and {imgs_B.shape}")
        return imgs_A, imgs_B

    # ----------------------------------------------------------------- using
    def translate(self, imgs, direction="AtoB"):
        """Translate a batch (batch, h, w, c) in [-1, 1]: 'AtoB' with g_AB, 'BtoA' with g_BA."""
        return run_generator(getattr(self, GENERATORS[check_direction(direction)]), imgs)
