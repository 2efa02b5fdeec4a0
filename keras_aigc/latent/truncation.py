"""The truncation trick: pull latents toward the mean latent."""

import numpy as np


def truncate(z, psi, mean=None):
    """`mean + psi * (z - mean)`: psi=1 leaves z as is, psi=0 gives the mean latent.

    Smaller psi trades variety for typical-looking samples (Brock et al. 2019 resample
    outside a threshold; StyleGAN interpolates toward the mean as here).

    Args:
        z: array `(..., d)`.
        psi: float in [0, 1] (values > 1 extrapolate and are allowed up to 2).
        mean: array `(d,)` or None. The mean latent; the prior's mean, 0, when None.

    Returns:
        float32 array shaped like `z`.

    Example:

    ```python
    images = gan.generate_from_latents(keras_aigc.latent.truncate(gan.latents(16), 0.7))
    ```

    Reference:
        Karras, Laine, Aila. A Style-Based Generator Architecture for GANs, 2019.
    """
    if isinstance(psi, bool) or not isinstance(psi, (int, float, np.floating)) or not (
            0.0 <= float(psi) <= 2.0):
        raise ValueError(f"psi must be a number in [0, 2], got psi={psi!r}.")
    z = np.asarray(z, np.float32)
    mean = np.zeros(z.shape[-1], np.float32) if mean is None else np.asarray(mean, np.float32)
    if mean.shape != (z.shape[-1],):
        raise ValueError(f"mean must have shape ({z.shape[-1]},), got {mean.shape}.")
    return (mean + np.float32(psi) * (z - mean)).astype(np.float32)
