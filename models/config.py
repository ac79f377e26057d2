"""`CycleGANConfig`: every setting of a CycleGAN model, typed, validated and saved as JSON.

Book defaults (Example 5-1, apple2orange) for the book's constructor arguments; paper defaults
(section 4 and appendix 7) for the options the book leaves out. An ablation is this config with a
few fields replaced (`dataclasses.replace`); every run folder and checkpoint stores it as JSON.
"""

import dataclasses
import math
import numbers
from dataclasses import dataclass

GENERATOR_TYPES = ("unet", "resnet")
SIZE_MULTIPLE = {"unet": 16, "resnet": 4}   # the U-Net halves height and width 4 times, the ResNet twice
UNET_UPSAMPLING = ("nearest", "bilinear")   # the book's, and one against checkerboards (models/generators.py)
RESNET_UPSAMPLING = ("transposed", "nearest", "bilinear")   # the paper's, and two resize-convolutions
DIFF_AUGMENT_OPS = ("color", "translation", "cutout")   # in the order applied (models/augment.py)
DIFF_AUGMENT_PAPER = "color,translation,cutout"          # the paper's policy for a few thousand images or fewer
# Upper bounds that keep an absurd value (--img-size 1000000000) a message instead of an out-of-memory
# traceback: a side of 4096 px and 1024 filters (or blocks) are far beyond anything trained here.
MAX_IMAGE_SIZE = 4096
MAX_WIDTH = 1024
# Fields that fix the networks a CycleGAN builds: a checkpoint only loads into a model that agrees on these
# (the layers' shapes, the generators' upsampling, and the augmentation layer in front of each discriminator).
ARCHITECTURE_FIELDS = ("input_dim", "generator_type", "gen_n_filters", "disc_n_filters", "n_resnet_blocks",
                       "unet_upsampling", "resnet_upsampling", "diff_augment", "disc_n_layers")


# The PatchGAN discriminator's geometry (models/discriminator.py builds it): 4x4 convs, zero padding 1.
DISC_KERNEL = 4
PAPER_DISC_N_LAYERS = 3  # C64, C128, C256 with stride 2, then C512 and the output conv with stride 1: 70x70
MAX_DISC_N_LAYERS = 6    # a 4478 px patch: far beyond any image trained here


def disc_strides(n_layers=PAPER_DISC_N_LAYERS):
    """Strides of the discriminator's convs, the output conv's included: n_layers of 2, then two of 1
    (the official code's NLayerDiscriminator)."""
    return (2,) * n_layers + (1, 1)


def patch_size(img_size, n_layers=PAPER_DISC_N_LAYERS):
    """Side of the patch map for an image side of `img_size` pixels (k=4, p=1 convs with `disc_strides`)."""
    for stride in disc_strides(n_layers):
        img_size = (img_size + 2 - DISC_KERNEL) // stride + 1
    return img_size


def receptive_field(n_layers=PAPER_DISC_N_LAYERS):
    """Side in pixels of the input patch one score sees: 70 for the paper's n_layers=3."""
    field, jump = 1, 1
    for stride in disc_strides(n_layers):
        field += (DISC_KERNEL - 1) * jump
        jump *= stride
    return field


def parse_diff_augment(policy):
    """The operations of a DiffAugment policy ('color,translation,cutout'; '' is none) as a tuple in the
    order they are applied; ValueError names a wrong one."""
    if not isinstance(policy, str):
        raise ValueError(f"diff_augment={policy!r}: must be a string such as {DIFF_AUGMENT_PAPER!r} ('' is off).")
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in DIFF_AUGMENT_OPS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"diff_augment={policy!r}: a comma-separated list of distinct operations from "
                         f"{DIFF_AUGMENT_OPS}, e.g. {DIFF_AUGMENT_PAPER!r} (the paper's), or '' (off).")
    return tuple(name for name in DIFF_AUGMENT_OPS if name in names)


def _whole(value):
    """A side or channel count of input_dim as an int: 64 and 64.0 pass, 64.9, True and "64" are an error
    (int() would cut 64.9 to 64 without a word)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ValueError(f"input_dim holds {value!r}: every value must be a whole number, e.g. (128, 128, 3)")
    return int(value)


@dataclass
class CycleGANConfig:
    """Settings of a CycleGAN (see `models.cyclegan.CycleGAN` for the paper <-> book names).

    input_dim: (height, width, channels) of the images, channels 1 or 3.
    learning_rate: Adam step size of all three optimizers (paper: 0.0002).
    lambda_validation: weight of the two adversarial (LSGAN) terms (book: 1).
    lambda_reconstr: weight of the two cycle-consistency L1 terms (paper's lambda: 10).
    lambda_id: weight of the two identity L1 terms, absolute as in the book (2 for apple2orange,
        5 for monet2photo); the official code's 0.5 is relative to lambda_reconstr (0.5 x 10 = 5).
    generator_type: 'unet' (book) or 'resnet' (paper).
    gen_n_filters, disc_n_filters: filters of the first generator / discriminator layer.
    n_resnet_blocks: residual blocks of the ResNet generator; None picks the paper's choice,
        6 below 256 px and 9 at 256 px and above.
    buffer_max_length: size of the history of generated images shown to the discriminators
        (paper: 50; 0 turns the pool off).
    beta_1, beta_2: Adam momentum terms (paper: 0.5, 0.999).
    epochs: epochs at the constant learning rate (paper: 100).
    decay_epochs: further epochs over which the learning rate decays linearly to 0 (paper: 100).
    seed: seeds the weights, the image pool and (in the training loop) the data order.
    jit_compile: Keras' `jit_compile` for the train and predict functions: 'auto' (XLA on JAX
        and on a TensorFlow GPU, not on a TensorFlow CPU, where it made a step slower:
        docs/backends_and_devices.md#backends-and-xla), True or False (on PyTorch, True means
        torch.compile).
    mixed_precision: compute in 16 bits with float32 weights, outputs and losses: 'bfloat16'
        ('mixed_bfloat16' policy, no loss scaling), 'float16' ('mixed_float16' with Keras'
        LossScaleOptimizer), or True: the fast one for the device (utils/runtime/devices.py: bfloat16 on GPUs of
        compute capability >= 8.0 and on CPUs, float16 on older GPUs such as Colab's T4). A built
        CycleGAN's config holds the resolved choice, so a checkpoint resumes with the same one.
    data_parallel: split each batch across the devices with the backend's own engine
        (JAX DataParallel, TensorFlow MirroredStrategy or, with TF_CONFIG, MultiWorkerMirroredStrategy;
        utils/runtime/executor.py). The batch size must be a multiple of the device count.
    unet_upsampling: how the U-Net doubles its size before each convolution: 'nearest' (the book's:
        nearest neighbour, then a 4x4 conv) or 'bilinear' (bilinear, then a 3x3 conv: against the
        checkerboard pattern, Odena et al. 2016; models/generators.py). The ResNet ignores it.
    resnet_upsampling: how the ResNet's u128 and u64 double their size: 'transposed' (the paper's 3x3
        stride-2 transposed convs) or a resize, 'nearest' or 'bilinear', then a 3x3 conv with the same
        filters (the same parameter count; against checkerboards, Odena et al. 2016). The U-Net ignores it.
    diff_augment: DiffAugment (Zhao et al. 2020) for small datasets: the operations, from 'color',
        'translation' and 'cutout', applied at random to every image a discriminator sees in training,
        reals and fakes, also on the generators' path (models/augment.py); '' (default) is off,
        'color,translation,cutout' the paper's policy for a few thousand images or fewer.
    disc_n_layers: stride-2 blocks of each PatchGAN discriminator (the official code's --n_layers_D),
        which set the patch one score sees: 3 (default) is the paper's 70x70, 2 is 34x34, 1 is 16x16
        (models/discriminator.py).
    """

    input_dim: tuple = (128, 128, 3)
    learning_rate: float = 0.0002
    lambda_validation: float = 1.0
    lambda_reconstr: float = 10.0
    lambda_id: float = 2.0
    generator_type: str = "unet"
    gen_n_filters: int = 32
    disc_n_filters: int = 32
    n_resnet_blocks: int | None = None
    buffer_max_length: int = 50
    beta_1: float = 0.5
    beta_2: float = 0.999
    epochs: int = 100
    decay_epochs: int = 100
    seed: int = 0
    jit_compile: bool | str = "auto"
    mixed_precision: bool | str = False
    data_parallel: bool = False
    unet_upsampling: str = "nearest"
    resnet_upsampling: str = "transposed"
    diff_augment: str = ""
    disc_n_layers: int = 3

    def __post_init__(self):
        self.input_dim = tuple(_whole(v) for v in self.input_dim)
        if isinstance(self.diff_augment, str):   # one spelling: 'translation, color' -> 'color,translation'
            self.diff_augment = ",".join(parse_diff_augment(self.diff_augment))
        if self.generator_type == "u-net":  # the book's spelling
            self.generator_type = "unet"
        if self.n_resnet_blocks is None:
            self.n_resnet_blocks = 9 if self.input_dim[0] >= 256 else 6
        self.validate()

    @property
    def size_multiple(self):
        """Height and width must be multiples of this: the U-Net halves them 4 times, the ResNet twice."""
        return SIZE_MULTIPLE[self.generator_type]

    def validate(self):
        """Raise ValueError naming the first bad value and what is allowed."""
        if len(self.input_dim) != 3:
            raise ValueError(f"input_dim={self.input_dim}: expected (height, width, channels), e.g. (128, 128, 3).")
        height, width, channels = self.input_dim
        if channels not in (1, 3):
            raise ValueError(f"input_dim={self.input_dim}: channels must be 1 (grayscale) or 3 (RGB), got {channels}.")
        if self.generator_type not in GENERATOR_TYPES:
            raise ValueError(f"generator_type={self.generator_type!r}: must be one of {GENERATOR_TYPES}.")
        factor = self.size_multiple
        if height % factor or width % factor:
            raise ValueError(
                f"input_dim={self.input_dim}: the {self.generator_type} generator downsamples by {factor}, so height "
                f"and width must be multiples of {factor} (e.g. {max(factor, height // factor * factor)}).")
        if max(height, width) > MAX_IMAGE_SIZE:
            raise ValueError(f"input_dim={self.input_dim}: at most {MAX_IMAGE_SIZE} px a side (the paper trains at 256); "
                             "train smaller and translate at full size with translate.py.")
        if min(height, width) < 32:
            raise ValueError(f"input_dim={self.input_dim}: images must be at least 32x32 for the 70x70 PatchGAN "
                             "discriminator to produce a patch map.")
        for name in ("learning_rate", "lambda_validation", "lambda_reconstr", "lambda_id", "beta_1", "beta_2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise ValueError(f"{name}={value!r}: must be a finite number (not NaN or inf).")
        for name in ("lambda_validation", "lambda_reconstr", "lambda_id"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)}: loss weights must be >= 0.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate}: must be > 0 (paper: 0.0002).")
        for name in ("gen_n_filters", "disc_n_filters", "n_resnet_blocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_WIDTH:
                raise ValueError(f"{name}={value!r}: must be a positive integer, at most {MAX_WIDTH} (paper: 64 filters, "
                                 "9 blocks).")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed={self.seed!r}: must be an integer from 0 to 2**32 - 1.")
        if not isinstance(self.buffer_max_length, int) or self.buffer_max_length < 0:
            raise ValueError(f"buffer_max_length={self.buffer_max_length!r}: must be an integer >= 0 (paper: 50).")
        for name in ("beta_1", "beta_2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: must be in [0, 1).")
        if self.mixed_precision not in (False, True, "float16", "bfloat16"):
            raise ValueError(f"mixed_precision={self.mixed_precision!r}: must be False, True (the fast 16-bit type for "
                             "the device), 'float16' or 'bfloat16'.")
        if self.unet_upsampling not in UNET_UPSAMPLING:
            raise ValueError(f"unet_upsampling={self.unet_upsampling!r}: must be one of {UNET_UPSAMPLING}.")
        if self.resnet_upsampling not in RESNET_UPSAMPLING:
            raise ValueError(f"resnet_upsampling={self.resnet_upsampling!r}: must be one of {RESNET_UPSAMPLING}.")
        parse_diff_augment(self.diff_augment)
        if isinstance(self.disc_n_layers, bool) or not isinstance(self.disc_n_layers, int) or \
                not 1 <= self.disc_n_layers <= MAX_DISC_N_LAYERS:
            raise ValueError(f"disc_n_layers={self.disc_n_layers!r}: must be an integer from 1 to {MAX_DISC_N_LAYERS} "
                             "(paper: 3, a 70x70 patch).")
        if patch_size(min(height, width), self.disc_n_layers) < 1:
            raise ValueError(f"disc_n_layers={self.disc_n_layers}: a {min(height, width)} px side is too small for a "
                             f"{receptive_field(self.disc_n_layers)} px patch; use fewer layers or larger images.")
        if self.jit_compile not in (True, False, "auto"):
            raise ValueError(f"jit_compile={self.jit_compile!r}: must be True, False or 'auto'.")
        for name in ("epochs", "decay_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: must be an integer >= 0.")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Build from a dict (e.g. a run's config.json); unknown keys are an error that names them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown CycleGAN setting(s) {unknown}; known settings: {sorted(known)}.")
        return cls(**values)

    def architecture_mismatch(self, other):
        """Names and values of the architecture fields in which `other` differs from this config."""
        return [f"{name}: {getattr(other, name)!r} != {getattr(self, name)!r}"
                for name in ARCHITECTURE_FIELDS if getattr(self, name) != getattr(other, name)]
