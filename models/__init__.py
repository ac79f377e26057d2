"""The paper's CycleGAN in Keras 3 (`keras.ops` and Keras layers only: runs on TensorFlow, JAX and PyTorch).

    config.py         CycleGANConfig: every setting, the book's names and defaults
    layers.py         instance normalization, reflection padding and the other custom layers
    generators.py     the U-Net (book Example 5-2) and the ResNet (paper appendix 7.2)
    discriminator.py  the 70x70 PatchGAN (Example 5-3)
    losses.py         the paper's losses by name: adversarial, cycle, identity, total, discriminator
    combined.py       the six-output generator model (Example 5-5)
    cyclegan.py       the CycleGAN class: build, compile, train_step (Examples 5-1 to 5-6)
    image_pool.py, lr_schedule.py, augment.py, directions.py   the pool, the schedule, DiffAugment, A/B names

The names below are imported on first use (PEP 562), so that `models.config` loads without Keras; the
`TYPE_CHECKING` block names the same homes for an editor's go-to-definition. Importing models changes
nothing in the process: TensorFlow's CPU kernels are chosen by `utils.runtime.onednn.prefer_onednn()`,
which the entry scripts and `utils.cli.quiet()` call before TensorFlow loads.
"""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # what an editor follows; at run time the same names come from _HOMES, on first use
    from models.augment import DiffAugment
    from models.config import CycleGANConfig
    from models.cyclegan import CycleGAN
    from models.discriminator import build_patchgan_discriminator
    from models.generators import build_resnet_generator, build_unet_generator
    from models.layers import FusableLeakyReLU, InstanceNormalization, ReflectionPadding2D, TopLeftCropping2D

# Public name -> the module that defines it.
_HOMES = {
    "CycleGAN": "models.cyclegan",
    "CycleGANConfig": "models.config",
    "DiffAugment": "models.augment",
    "FusableLeakyReLU": "models.layers",
    "InstanceNormalization": "models.layers",
    "ReflectionPadding2D": "models.layers",
    "TopLeftCropping2D": "models.layers",
    "build_patchgan_discriminator": "models.discriminator",
    "build_resnet_generator": "models.generators",
    "build_unet_generator": "models.generators",
}
__all__ = sorted(_HOMES)


def __getattr__(name):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__():
    return sorted([*globals(), *_HOMES])
