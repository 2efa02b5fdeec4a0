"""BetaVAE: a VAE whose KL term is weighted by beta (default 4)."""

import keras

from keras_aigc.models.vae.vae import VAE


@keras.saving.register_keras_serializable(package="keras_aigc")
class BetaVAE(VAE):
    """beta-VAE: the VAE objective with the KL term weighted by `beta`.

    `beta > 1` trades reconstruction for a posterior closer to the prior, which
    encourages disentangled latents; `beta = 1` is the plain VAE. The trackers still
    report the unweighted ELBO.

    Args:
        beta: float. KL weight. Defaults to `4.0`.
        **kwargs: every other `VAE` argument.

    Example:

    ```python
    vae = keras_aigc.models.BetaVAE(image_shape=(32, 32, 1), latent_dim=10, beta=4.0)
    vae.compile()
    ```

    Reference:
        Higgins et al., beta-VAE: Learning Basic Visual Concepts with a Constrained
        Variational Framework, ICLR 2017.
    """

    def __init__(self, beta=4.0, **kwargs):
        super().__init__(beta=beta, **kwargs)
