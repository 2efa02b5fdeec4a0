"""The VAE's default networks: dense encoder and decoder (`VAE.build_encoder` /
`build_decoder` call these; subclasses override those hooks for other architectures)."""

import keras
import numpy as np

from keras_aigc.models.vae.posterior_params import PosteriorParams


def build_mlp_encoder(image_shape, latent_dim, hidden_units, activation, posterior,
                      label_dim=0, name="encoder"):
    """Functional encoder: image (and one-hot label `(B, label_dim)`) -> posterior `loc`,
    `scale`.

    Args:
        image_shape: tuple `(H, W, C)`.
        latent_dim: int.
        hidden_units: tuple of int. Dense widths.
        activation: str. Hidden activation.
        posterior: str. `"diagonal"` or `"full"` (see `PosteriorParams`).
        label_dim: int. Width of the one-hot label input; `0` for none.
    """
    image = keras.Input(tuple(image_shape), name="image")
    inputs = [image]
    h = keras.layers.Flatten(name="flatten")(image)
    if label_dim:
        onehot = keras.Input((label_dim,), name="label_onehot")
        inputs.append(onehot)
        h = keras.layers.Concatenate(name="concat_label")([h, onehot])
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden{i}")(h)
    params = PosteriorParams(latent_dim, posterior, name="posterior_params")
    raw = keras.layers.Dense(params.num_params, dtype="float32", name="posterior_raw")(h)
    loc, scale = params(raw)
    return keras.Model(inputs if label_dim else image, [loc, scale], name=name)


def build_mlp_decoder(image_shape, latent_dim, hidden_units, activation, likelihood_params,
                      label_dim=0, name="decoder"):
    """Functional decoder: `z` (and one-hot label) -> likelihood parameters
    `(H, W, C * likelihood_params)`; `hidden_units` are used in reverse."""
    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    h = z
    if label_dim:
        onehot = keras.Input((label_dim,), name="label_onehot")
        inputs.append(onehot)
        h = keras.layers.Concatenate(name="concat_label")([h, onehot])
    for i, units in enumerate(reversed(tuple(hidden_units))):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden{i}")(h)
    height, width, channels = image_shape
    p = int(likelihood_params)
    raw = keras.layers.Dense(int(np.prod(image_shape)) * p, dtype="float32",
                             name="likelihood_raw")(h)
    params = keras.layers.Reshape((height, width, channels * p), dtype="float32",
                                  name="params")(raw)
    return keras.Model(inputs if label_dim else z, params, name=name)
