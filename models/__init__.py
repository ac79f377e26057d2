"""CycleGAN networks and training (Keras 3, `keras.ops` only: runs on TensorFlow, JAX and PyTorch)."""

from models.config import CycleGANConfig
from models.cyclegan import CycleGAN
from models.discriminator import build_patchgan_discriminator
from models.generators import build_resnet_generator, build_unet_generator
from models.layers import FusableLeakyReLU, InstanceNormalization, ReflectionPadding2D, TopLeftCropping2D

__all__ = ["CycleGAN", "CycleGANConfig", "FusableLeakyReLU", "InstanceNormalization", "ReflectionPadding2D",
           "TopLeftCropping2D", "build_patchgan_discriminator", "build_resnet_generator", "build_unet_generator"]
