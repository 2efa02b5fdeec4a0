"""`PosteriorParams`: unconstrained encoder outputs -> posterior loc and scale tensors."""

import keras
import tensorflow as tf

from keras_aigc.models.vae import distributions as dists


@keras.saving.register_keras_serializable(package="keras_aigc")
class PosteriorParams(keras.layers.Layer):
    """Splits `(B, d + s)` encoder outputs into the Gaussian posterior's `loc` and `scale`.

    The scale goes through a `tfp.bijectors` bijector: `softplus + 1e-5` for a diagonal
    posterior (`scale` is the `(B, d)` stddev vector), `FillScaleTriL` for a full one
    (`scale` is the `(B, d, d)` lower-triangular Cholesky factor). Only tensors leave the
    layer; the model builds the distribution from them.

    Args:
        latent_dim: int. `d`.
        posterior: str. `"diagonal"` or `"full"`. Defaults to `"diagonal"`.

    Example:

    ```python
    loc, scale = PosteriorParams(latent_dim=2)(keras.ops.zeros((3, 4)))
    ```

    Reference:
        Kingma & Welling, Auto-Encoding Variational Bayes, 2014.
    """

    def __init__(self, latent_dim, posterior="diagonal", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        dists.check_choice("posterior", posterior, dists.POSTERIORS)
        self.latent_dim = int(latent_dim)
        self.posterior = posterior
        self.bijector = dists.posterior_scale_bijector(posterior)

    @property
    def num_params(self):
        return self.latent_dim + dists.num_posterior_scale_params(self.posterior,
                                                                  self.latent_dim)

    def call(self, raw):
        raw = tf.cast(raw, tf.float32)
        loc = raw[..., :self.latent_dim]
        if self.posterior == "diagonal":
            # Equal to the bijector's forward (softplus + shift), written with tf.nn.softplus
            # because TFP's Softplus bijector lowers to Log1p, which tf2onnx cannot convert.
            scale = tf.nn.softplus(raw[..., self.latent_dim:]) + dists.MIN_POSTERIOR_SCALE
        else:
            scale = self._fill_scale_tril(raw[..., self.latent_dim:])
        return loc, scale

    def _fill_scale_tril(self, raw_scale):
        """`tfb.FillScaleTriL(Softplus, shift)` forward, with Gather instead of the
        MatrixDiagPart / fill_triangular ops that TFLite (builtin ops) cannot convert."""
        import numpy as np
        import tensorflow_probability as tfp

        d = self.latent_dim
        n = d * (d + 1) // 2
        # Where fill_triangular puts each raw entry (1-based; 0 marks the zero upper part),
        # computed eagerly even while call() is being traced.
        with tf.init_scope():
            index = tfp.math.fill_triangular(np.arange(1, n + 1, dtype=np.int32)).numpy()
        padded = tf.concat([tf.zeros_like(raw_scale[..., :1]), raw_scale], axis=-1)
        flat = tf.gather(padded, index.reshape(-1), axis=-1)
        tril = tf.reshape(flat, tf.concat([tf.shape(raw_scale)[:-1], [d, d]], axis=0))
        eye = tf.eye(d, dtype=tril.dtype)
        return tril * (1.0 - eye) + eye * (tf.nn.softplus(tril) + dists.MIN_POSTERIOR_SCALE)

    def raw_scale(self, scale):
        """Inverse of the scale transform: the unconstrained outputs giving `scale`."""
        return self.bijector.inverse(tf.convert_to_tensor(scale, tf.float32))

    def compute_output_shape(self, input_shape):
        batch = input_shape[:-1]
        d = self.latent_dim
        scale = (*batch, d) if self.posterior == "diagonal" else (*batch, d, d)
        return (*batch, d), scale

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "posterior": self.posterior})
        return config
