"""Images along one latent dimension, for any model of the contract."""

import numpy as np


def decode_fn(model):
    """The model's latents -> images function: `decode_latents` (the model contract),
    `generate_from_latents` (GAN) or `decode` (VAE)."""
    for name in ("decode_latents", "generate_from_latents", "decode"):
        fn = getattr(model, name, None)
        if callable(fn):
            return fn
    raise ValueError(f"{type(model).__name__} has no latents -> images function "
                     f"(decode_latents, generate_from_latents or decode).")


def latent_dim_of(model):
    dim = getattr(model, "latent_dim", None)
    if dim is None:
        raise ValueError(f"{type(model).__name__} has no latent space (latent_dim is None).")
    return int(dim)


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
