"""CycleGAN networks and training (Keras 3, `keras.ops` only: runs on TensorFlow, JAX and PyTorch).

The names below are imported on first use (PEP 562), so that the modules without Keras
(models/config.py, models/files.py, models/disk_space.py, models/onednn.py) load without it:
`utils.datasets.download` stays quick, a notebook's `quiet()` still runs before TensorFlow prints anything, and
TensorFlow's CPU kernels are chosen before it loads (models/onednn.py).
Importing any network or the model registers the custom layers (models/layers.py) with Keras.
"""

import importlib

from models.onednn import prefer_onednn

prefer_onednn()   # before anything loads TensorFlow: its fast CPU kernels on every x86 CPU (models/onednn.py)

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
