"""Autoregressive image models with an exact likelihood."""

from keras_aigc.models.autoregressive.masked_conv2d import MaskedConv2D
from keras_aigc.models.autoregressive.pixel_cnn import PixelCNN

__all__ = ["MaskedConv2D", "PixelCNN"]
