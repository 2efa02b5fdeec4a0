"""The VAE's default networks: dense encoder and decoder (`VAE.build_encoder` /
`build_decoder` call these; subclasses override those hooks for other architectures)."""

import keras
import numpy as np

from keras_aigc.layers.label_onehot import LabelOneHot
from keras_aigc.models.vae.posterior_params import PosteriorParams


def label_input(num_classes):
    """`([labels], onehot)`: the int32 `labels (B,)` input of a conditional network and its
    one-hot `(B, num_classes)` through `LabelOneHot`; `([], None)` when `num_classes` is
    `None` or `0`."""
    if not num_classes:
        return [], None
    labels = keras.Input((), dtype="int32", name="labels")
    return [labels], LabelOneHot(num_classes, name="label_onehot")(labels)


def build_mlp_encoder(image_shape, latent_dim, hidden_units, activation, posterior,
                      num_classes=None, name="encoder"):
    """Functional encoder: image (and int32 labels `(B,)`, one-hot inside) -> posterior
    `loc`, `scale`.

    Args:
        image_shape: tuple `(H, W, C)`.
        latent_dim: int.
        hidden_units: tuple of int. Dense widths.
        activation: str. Hidden activation.
        posterior: str. `"diagonal"` or `"full"` (see `PosteriorParams`).
        num_classes: int or None. Classes of the label input; `None` for none.
    """
    image = keras.Input(tuple(image_shape), name="image")
    labels, onehot = label_input(num_classes)
    h = keras.layers.Flatten(name="flatten")(image)
    if onehot is not None:
        h = keras.layers.Concatenate(name="concat_label")([h, onehot])
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden{i}")(h)
    params = PosteriorParams(latent_dim, posterior, name="posterior_params")
    raw = keras.layers.Dense(params.num_params, dtype="float32", name="posterior_raw")(h)
    loc, scale = params(raw)
    return keras.Model([image, *labels] if labels else image, [loc, scale], name=name)


def build_mlp_decoder(image_shape, latent_dim, hidden_units, activation, likelihood_params,
                      num_classes=None, name="decoder"):
    """Functional decoder: `z` (and int32 labels `(B,)`) -> likelihood parameters
    `(H, W, C * likelihood_params)`; `hidden_units` are used in reverse."""
    z = keras.Input((latent_dim,), name="z")
    labels, onehot = label_input(num_classes)
    h = z
    if onehot is not None:
        h = keras.layers.Concatenate(name="concat_label")([h, onehot])
    for i, units in enumerate(reversed(tuple(hidden_units))):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden{i}")(h)
    height, width, channels = image_shape
    p = int(likelihood_params)
    raw = keras.layers.Dense(int(np.prod(image_shape)) * p, dtype="float32",
                             name="likelihood_raw")(h)
    params = keras.layers.Reshape((height, width, channels * p), dtype="float32",
                                  name="params")(raw)
    return keras.Model([z, *labels] if labels else z, params, name=name)
