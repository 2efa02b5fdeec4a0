"""Images along one latent dimension, for any model of the contract."""

import numpy as np


def decode_fn(model):
    """The model's latents -> images function, from the model contract:
    `model.generate_from_latents(z, labels=None)` (float images in `value_range`)."""
    _check_contract(model)
    return model.generate_from_latents


def _check_contract(model):
    from keras_aigc.models.base import GenerativeModel

    if not isinstance(model, GenerativeModel):
        raise ValueError(f"The latent tools work on keras_aigc.models.GenerativeModel "
                         f"subclasses, got {type(model).__name__}.")


def latent_dim_of(model):
    _check_contract(model)
    if model.latent_dim is None:
        raise ValueError(f"{type(model).__name__} has no latent space (latent_dim is None).")
    return int(model.latent_dim)


def traverse(model, dim, values, base=None, labels=None):
    """Decodes `base` with latent `dim` set to each of `values`.

    Args:
        model: a model with `latent_dim` and a decoder (see `decode_fn`).
        dim: int. The latent dimension to vary.
        values: sequence of float. Values for that dimension.
        base: array `(latent_dim,)` or None. The other coordinates (default: zeros, the
            prior mean).
        labels: int or None. Class label for conditional models.

    Returns:
        `(latents (len(values), d), images (len(values), H, W, C))`.

    Example:

    ```python
    z, images = keras_aigc.latent.traverse(vae, dim=0, values=np.linspace(-3, 3, 9))
    ```
    """
    d = latent_dim_of(model)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 0 <= dim < d:
        raise ValueError(f"dim must be an integer in [0, {d}), got dim={dim!r}.")
    values = np.asarray(values, np.float32).reshape(-1)
    if values.size == 0:
        raise ValueError("values is empty.")
    base = np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32)
    if base.shape != (d,):
        raise ValueError(f"base must have shape ({d},), got {base.shape}.")
    z = np.repeat(base[None], len(values), axis=0)
    z[:, dim] = values
    kwargs = {}
    if labels is not None:
        kwargs["labels"] = np.full(len(values), int(labels), np.int32)
    return z, np.asarray(decode_fn(model)(z, **kwargs))
