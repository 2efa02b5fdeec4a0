"""Probabilistic VAEs on TensorFlow Probability."""

from keras_aigc.models.vae.beta_vae import BetaVAE
from keras_aigc.models.vae.conditional_vae import ConditionalVAE
from keras_aigc.models.vae.likelihood_mean import LikelihoodMean
from keras_aigc.models.vae.posterior_params import PosteriorParams
from keras_aigc.models.vae.vae import VAE

__all__ = ["VAE", "BetaVAE", "ConditionalVAE", "LikelihoodMean", "PosteriorParams"]
