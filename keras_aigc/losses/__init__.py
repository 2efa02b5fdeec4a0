"""Adversarial losses (per example) and penalties, selectable by name."""

from keras_aigc.losses.adversarial import (
    hinge_discriminator_loss,
    hinge_generator_loss,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_discriminator_loss,
    minimax_generator_loss,
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)
from keras_aigc.losses.penalties import PENALTIES, gradient_penalty, r1_penalty
from keras_aigc.losses.registry import GAN_LOSSES, get_gan_loss, register_gan_loss

__all__ = [
    "minimax_generator_loss",
    "minimax_discriminator_loss",
    "non_saturating_generator_loss",
    "non_saturating_discriminator_loss",
    "least_squares_generator_loss",
    "least_squares_discriminator_loss",
    "wasserstein_generator_loss",
    "wasserstein_discriminator_loss",
    "hinge_generator_loss",
    "hinge_discriminator_loss",
    "gradient_penalty",
    "r1_penalty",
    "PENALTIES",
    "get_gan_loss",
    "register_gan_loss",
    "GAN_LOSSES",
]
