"""Paths between latents: spherical (slerp) and linear interpolation."""

import numpy as np

METHODS = ("slerp", "lerp")


def interpolate(z0, z1, steps, method="slerp"):
    """Latents on the path from `z0` to `z1`, both ends included.

    Slerp (Shoemake 1985) moves along the great circle between the two directions with the
    norm interpolated too, which keeps Gaussian latents at typical norms (a straight line
    passes near the origin, where a Gaussian prior has almost no mass in high dimension):
    `slerp(t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1`, `cos(w) = z0.z1/|z0||z1|`.

    Args:
        z0, z1: array `(d,)` or `(n, d)` (n paths at once).
        steps: int >= 2. Points per path.
        method: `"slerp"` or `"lerp"`. Defaults to `"slerp"`.

    Returns:
        float32 `(steps, d)` or `(n, steps, d)`.

    Example:

    ```python
    z = keras_aigc.latent.interpolate(gan.latents(1, seed=0)[0], gan.latents(1, seed=1)[0], 8)
    images = gan.generate_from_latents(z)
    ```

    Reference:
        Shoemake, Animating rotation with quaternion curves, SIGGRAPH 1985; White,
        Sampling Generative Networks, 2016.
    """
    if method not in METHODS:
        raise ValueError(f"Unrecognized method={method!r}. Supported methods are: "
                         f"{list(METHODS)}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got steps={steps!r}.")
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2):
        raise ValueError(f"z0 and z1 must have the same shape (d,) or (n, d); got {a.shape} "
                         f"and {b.shape}.")
    single = a.ndim == 1
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    t = np.linspace(0.0, 1.0, int(steps))[None, :, None]
    if method == "lerp":
        out = (1 - t) * a[:, None] + t * b[:, None]
    else:
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cos = np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)
        omega = np.arccos(np.clip(cos, -1.0, 1.0))[:, None, None]
        so = np.sin(omega)
        # Nearly parallel vectors: slerp's limit is lerp.
        near = so < 1e-6
        safe = np.where(near, 1.0, so)
        wa = np.where(near, 1 - t, np.sin((1 - t) * omega) / safe)
        wb = np.where(near, t, np.sin(t * omega) / safe)
        out = wa * a[:, None] + wb * b[:, None]
    out = out.astype(np.float32)
    return out[0] if single else out
