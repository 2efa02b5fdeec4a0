"""Adversarial losses (per example) and penalties, selectable by name."""

from keras_aigc.losses.adversarial import (
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
)
from keras_aigc.losses.registry import GAN_LOSSES, get_gan_loss, register_gan_loss

__all__ = [
    "non_saturating_generator_loss",
    "non_saturating_discriminator_loss",
    "get_gan_loss",
    "register_gan_loss",
    "GAN_LOSSES",
]
