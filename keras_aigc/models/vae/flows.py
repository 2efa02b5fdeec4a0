"""Inverse autoregressive flow (IAF) steps: a richer posterior on top of the Gaussian one.

`q(z | x)` becomes the encoder's Gaussian pushed through `T` invertible autoregressive steps
(Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow"):

    z_0 = loc + scale * eps
    z_t = m_t(z_{t-1}, c) + sigma_t(z_{t-1}, c) * z_{t-1}
    log q(z_T | x) = log N(z_0; loc, scale) - sum_t sum_i log sigma_t,i

`m_t` and `sigma_t` come from a MADE network (Germain et al. 2015): masked dense layers in
which output `i` depends only on the inputs before `i` in the step's ordering, so each step's
Jacobian is triangular with `sigma_t` on its diagonal. Sampling and the density of the
samples cost one network pass per step (no sequential loop), which is what the IWAE
objective and the importance-sampled likelihood need. Successive steps reverse the order.

The context `c` is the posterior's `(loc, log scale)` (the diagonal of the Cholesky factor
for the full posterior), so the flow depends on `x` while the encoder keeps its
`(loc, scale)` contract. `sigma = 2 * sigmoid(r)` lies in (0, 2) (bounded, so no step can
blow up), and the output layer starts at zero, so a new flow is the identity: a model with
flow steps starts exactly where the same model without them starts.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.models.base import positive_int as _positive_int


def made_degrees(latent_dim, hidden_units, reverse=False):
    """MADE degrees: inputs `1..d` (reversed when `reverse`), hidden units cycling
    through `1..d-1`, so output `i` sees exactly the inputs of degree `< deg(i)`."""
    d = int(latent_dim)
    inputs = np.arange(1, d + 1)
    if reverse:
        inputs = inputs[::-1]
    hidden = [(np.arange(int(h)) % max(1, d - 1)) + 1 for h in hidden_units]
    return inputs, hidden


def made_masks(latent_dim, hidden_units, reverse=False):
    """0/1 float32 masks `(in, out)` of the MADE layers: input -> hidden, hidden ->
    hidden, ..., hidden -> output (the output masks apply to both `m` and `r`)."""
    inputs, hidden = made_degrees(latent_dim, hidden_units, reverse)
    masks, prev = [], inputs
    for deg in hidden:
        masks.append((deg[None, :] >= prev[:, None]).astype(np.float32))
        prev = deg
    masks.append((inputs[None, :] > prev[:, None]).astype(np.float32))
    return masks


def _dense(x, kernel):
    """`x (..., a) @ kernel (a, b)` as one 2-D matmul whatever the leading axes."""
    return tf.tensordot(x, kernel, axes=1)


@keras.saving.register_keras_serializable(package="keras_aigc")
class IAFStep(keras.layers.Layer):
    """One inverse autoregressive flow step with a MADE network and a context input.

    Called on `(z, context)` with `z` of shape `(..., d)` and `context` of shape
    `(B, c)` (broadcast against `z`'s leading axes, e.g. `(k, B, d)` IWAE samples),
    returns `(z_new, log_det)`: `z_new = m + sigma * z` and `log_det = sum_i log sigma_i`
    of shape `z.shape[:-1]`.

    Args:
        latent_dim: int. `d`.
        hidden_units: tuple of int. Widths of the MADE's hidden layers (at least one).
        reverse: bool. Use the reversed variable order (alternate it between steps).
        activation: str. Hidden activation. Defaults to `"elu"`.
    """

    def __init__(self, latent_dim, hidden_units=(256,), reverse=False, activation="elu",
                 **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.latent_dim = _positive_int("latent_dim", latent_dim)
        hidden_units = tuple(hidden_units)
        if not hidden_units:
            raise ValueError("IAFStep needs at least one hidden layer, got hidden_units=().")
        for units in hidden_units:
            _positive_int("flow_hidden_units entries", units)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.reverse = bool(reverse)
        self.activation = activation
        self._act = keras.activations.get(activation)
        self._masks = made_masks(self.latent_dim, self.hidden_units, self.reverse)
        self._out_mask = np.concatenate([self._masks[-1]] * 2, axis=1)

    def build(self, input_shape):
        z_shape, context_shape = input_shape
        context_dim = int(context_shape[-1])
        d = self.latent_dim
        widths = (d, *self.hidden_units)
        self.kernels, self.biases = [], []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            self.kernels.append(self.add_weight(shape=(a, b), initializer="glorot_uniform",
                                                name=f"kernel_{i}"))
            self.biases.append(self.add_weight(shape=(b,), initializer="zeros",
                                               name=f"bias_{i}"))
        self.context_kernel = self.add_weight(shape=(context_dim, self.hidden_units[0]),
                                              initializer="glorot_uniform",
                                              name="context_kernel")
        # Zero output layer: m = 0 and sigma = 2 * sigmoid(0) = 1, the identity.
        self.out_kernel = self.add_weight(shape=(self.hidden_units[-1], 2 * d),
                                          initializer="zeros", name="out_kernel")
        self.out_bias = self.add_weight(shape=(2 * d,), initializer="zeros", name="out_bias")

    def shift_and_raw_scale(self, z, context):
        """The MADE outputs `(m, r)`, each shaped like `z`; `sigma = 2 * sigmoid(r)`."""
        z = tf.cast(z, tf.float32)
        context = tf.cast(context, tf.float32)
        # The context enters the first hidden layer unmasked: (B, H0), broadcast over
        # the leading sample axes of z.
        h = self._act(_dense(z, self.kernels[0] * self._masks[0]) + self.biases[0]
                      + tf.matmul(context, self.context_kernel))
        for i in range(1, len(self.kernels)):
            h = self._act(_dense(h, self.kernels[i] * self._masks[i]) + self.biases[i])
        out = _dense(h, self.out_kernel * self._out_mask) + self.out_bias
        return out[..., :self.latent_dim], out[..., self.latent_dim:]

    def call(self, z, context):
        m, r = self.shift_and_raw_scale(z, context)
        sigma = 2.0 * tf.sigmoid(r)
        log_det = tf.reduce_sum(math.log(2.0) + tf.math.log_sigmoid(r), axis=-1)
        return m + sigma * tf.cast(z, tf.float32), log_det

    def inverse(self, z_new, context):
        """`z` with `call(z, context)[0] == z_new`: `d` fixed-point passes, exact because
        pass `j` fixes the `j`-th variable in order (for densities at arbitrary points;
        sampling never needs it)."""
        z_new = tf.cast(z_new, tf.float32)
        z = tf.zeros_like(z_new)
        for _ in range(self.latent_dim):
            m, r = self.shift_and_raw_scale(z, context)
            z = (z_new - m) / (2.0 * tf.sigmoid(r))
        return z

    def compute_output_shape(self, input_shape):
        z_shape = input_shape[0]
        return z_shape, z_shape[:-1]

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "hidden_units": self.hidden_units,
                       "reverse": self.reverse, "activation": self.activation})
        return config


def flow_context(posterior, loc, scale):
    """The flow's context from the posterior parameters: `(loc, log stddev)` (the log of
    the Cholesky factor's diagonal for the full posterior)."""
    diag = scale if posterior == "diagonal" else tf.linalg.diag_part(scale)
    return tf.concat([loc, tf.math.log(diag)], axis=-1)
