"""Generative models as `keras.Model` subclasses; see `get()` for lookup by name."""

from keras_aigc.models.autoregressive import PixelCNN
from keras_aigc.models.base import GenerativeModel
from keras_aigc.models.gan import (
    DCGAN,
    GAN,
    SNGAN,
    WGANGP,
    ConditionalGAN,
    ConditionalResNetGAN,
    ResNetGAN,
)
from keras_aigc.models.vae import VAE, BetaVAE, ConditionalVAE
from keras_aigc.models.vae.conv_vae import ConvVAE
from keras_aigc.models.vae.resnet_vae import ResNetVAE

MODELS = {"GAN": GAN, "DCGAN": DCGAN}
MODELS.update({"WGANGP": WGANGP, "SNGAN": SNGAN, "ConditionalGAN": ConditionalGAN})
MODELS.update({"VAE": VAE, "BetaVAE": BetaVAE, "ConditionalVAE": ConditionalVAE})
MODELS.update({"PixelCNN": PixelCNN})
MODELS.update({"ResNetGAN": ResNetGAN, "ConditionalResNetGAN": ConditionalResNetGAN,
               "ResNetVAE": ResNetVAE})
MODELS.update({"ConvVAE": ConvVAE})


def get(name):
    """Returns the model class registered under `name`."""
    if name not in MODELS:
        raise ValueError(f"Unrecognized model={name!r}. Supported models are: {sorted(MODELS)}.")
    return MODELS[name]


__all__ = ["GenerativeModel", "GAN", "DCGAN", "MODELS", "get"]
__all__ += ["WGANGP", "SNGAN", "ConditionalGAN", "VAE", "BetaVAE", "ConditionalVAE"]

from keras_aigc.models.preset import load_preset as from_preset  # noqa: E402

__all__ += ["from_preset"]
__all__ += ["PixelCNN"]
__all__ += ["ResNetGAN", "ConditionalResNetGAN", "ResNetVAE"]
__all__ += ["ConvVAE"]
