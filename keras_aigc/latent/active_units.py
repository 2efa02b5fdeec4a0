"""VAE diagnostics per latent dimension: active units and KL to the prior."""

import numpy as np


def _posterior(vae, x, labels=None, batch_size=256):
    if not callable(getattr(vae, "encode", None)):
        raise ValueError(f"{type(vae).__name__} has no encode(x): active units and KL per "
                         f"dimension are for VAEs.")
    x = np.asarray(x)
    locs, scales = [], []
    for i in range(0, len(x), batch_size):
        lab = None if labels is None else np.asarray(labels)[i:i + batch_size]
        loc, scale = vae.encode(x[i:i + batch_size], lab) if lab is not None else vae.encode(
            x[i:i + batch_size])
        scale = np.asarray(scale)
        if scale.ndim == 3:  # full (d, d) scale: its diagonal
            scale = np.diagonal(scale, axis1=1, axis2=2)
        locs.append(np.asarray(loc, np.float64))
        scales.append(scale.astype(np.float64))
    return np.concatenate(locs), np.concatenate(scales)


def active_units(vae, x, threshold=0.01, labels=None):
    """Active units: dimensions whose posterior mean varies with the input.

    `A_u = Cov_x(E_{q(z|x)}[z_u])`; a unit is active when `A_u > threshold` (0.01).

    Args:
        vae: a VAE (`encode(x) -> (loc, scale)`).
        x: images, as the model's data.
        threshold: float. Defaults to `0.01` (Burda et al.).
        labels: labels for conditional VAEs.

    Returns:
        dict: `count` (int), `active` (list of bool), `variance` (list, per dimension).

    Example:

    ```python
    stats = keras_aigc.latent.active_units(vae, x_val)
    print(stats["count"], "of", vae.latent_dim, "units active")
    ```

    Reference:
        Burda, Grosse, Salakhutdinov. Importance Weighted Autoencoders, 2015 (section 5.2).
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}.")
    loc, _ = _posterior(vae, x, labels)
    if len(loc) < 2:
        raise ValueError("active_units needs at least 2 examples.")
    var = loc.var(axis=0, ddof=1)
    active = var > threshold
    return {"count": int(active.sum()), "active": active.tolist(), "variance": var.tolist(),
            "threshold": float(threshold)}


def kl_per_dimension(vae, x, labels=None):
    """Mean over `x` of `KL(q(z_u|x) || N(0, 1))` per dimension, in nats (closed form
    `0.5 (mu^2 + sigma^2 - 1) - log sigma`); the diagonal of a full posterior is used.

    Only for the standard normal prior (`prior="normal"`); a mixture prior has no
    per-dimension closed form.
    """
    prior = getattr(vae, "prior", "normal")
    if prior != "normal":
        raise ValueError(f"kl_per_dimension needs prior='normal', the VAE has prior={prior!r}.")
    loc, scale = _posterior(vae, x, labels)
    kl = 0.5 * (loc**2 + scale**2 - 1.0) - np.log(scale)
    return kl.mean(axis=0).tolist()
