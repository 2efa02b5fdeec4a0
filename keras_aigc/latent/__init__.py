"""Latent-space tools for every model of the contract (`latent_dim` + a decoder)."""

from keras_aigc.latent.active_units import active_units, kl_per_dimension
from keras_aigc.latent.interpolation import METHODS, interpolate
from keras_aigc.latent.traversal import decode_fn, traverse
from keras_aigc.latent.truncation import truncate

__all__ = ["active_units", "kl_per_dimension", "interpolate", "METHODS", "decode_fn",
           "traverse", "truncate"]
