"""TFP distributions of the VAE family, built from plain tensors.

Networks output tensors; these helpers turn them into `tfp.distributions` objects inside
`train_step` and the evaluation functions, so no distribution ever crosses a Keras layer
boundary (tensorflow/probability#1795: `tfp.layers` has no Keras 3 support).
"""

import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
tfb = tfp.bijectors

LIKELIHOODS = ("bernoulli", "gaussian", "logistic")
POSTERIORS = ("diagonal", "full")
PRIORS = ("normal", "mixture")
OBJECTIVES = ("elbo", "iwae")

# Floors that keep scales away from zero so log-densities stay finite.
MIN_POSTERIOR_SCALE = 1e-5
MIN_LIKELIHOOD_SCALE = 1e-3
# Pixel levels of 8-bit images, for the discretized logistic and bits/dim.
NUM_BINS = 256


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"Unrecognized {name}={value!r}. Supported: {list(allowed)}.")


def likelihood_num_params(likelihood, gaussian_scale):
    """Decoder output channels per image channel."""
    check_choice("likelihood", likelihood, LIKELIHOODS)
    if likelihood == "bernoulli":
        return 1
    if likelihood == "gaussian":
        return 1 if gaussian_scale is not None else 2
    return 2


def likelihood_scale(raw):
    return tf.nn.softplus(raw) + MIN_LIKELIHOOD_SCALE


def likelihood_log_prob(likelihood, params, x, channels, gaussian_scale=None):
    """`log p(x | z)` summed over the pixels of images `x`.

    Args:
        likelihood: str. One of `LIKELIHOODS`.
        params: decoder outputs `(..., H, W, C * p)`: the location (Bernoulli logits,
            Gaussian mean, logistic location) in the first `C` channels, an unconstrained
            scale in the next `C` when the likelihood has one.
        x: images `(..., H, W, C)`, broadcastable against `params`.
        channels: int. `C`.
        gaussian_scale: float or None. Fixed Gaussian stddev; `None` reads it from `params`.

    Returns:
        Log-probabilities of shape `params.shape[:-3]`, in nats.
    """
    params = tf.cast(params, tf.float32)
    x = tf.cast(x, tf.float32)
    loc = params[..., :channels]
    if likelihood == "bernoulli":
        base = tfd.Bernoulli(logits=loc, dtype=tf.float32)
    elif likelihood == "gaussian":
        if gaussian_scale is not None:
            scale = tf.constant(float(gaussian_scale), tf.float32)
        else:
            scale = likelihood_scale(params[..., channels:2 * channels])
        base = tfd.Normal(loc=loc, scale=scale)
    elif likelihood == "logistic":
        base = DiscretizedLogistic(loc, likelihood_scale(params[..., channels:2 * channels]))
    else:
        check_choice("likelihood", likelihood, LIKELIHOODS)
    return tf.reduce_sum(base.log_prob(x), axis=[-3, -2, -1])


class DiscretizedLogistic:
    """Discretized logistic over 8-bit pixels scaled to [0, 1] (Salimans et al. 2017).

    Pixel value `k / 255` gets the logistic mass of `[k - 0.5, k + 0.5]` in pixel units,
    with the two edge bins extended to -inf and +inf, so the 256 masses sum to one. The
    computation is TFP's `QuantizedDistribution` (numerically careful log-differences of
    CDFs) over a logistic in pixel units, shifted by half a bin so that its buckets
    `(k - 1, k]` become `(k - 0.5, k + 0.5]`.
    """

    def __init__(self, loc, scale):
        levels = NUM_BINS - 1
        self.dist = tfd.QuantizedDistribution(
            tfd.Logistic(loc=loc * levels - 0.5, scale=scale * levels),
            low=0.0, high=float(levels))

    def log_prob(self, x):
        return self.dist.log_prob(tf.round(x * (NUM_BINS - 1)))


def likelihood_mean(likelihood, params, channels):
    """Mean image of `p(x | z)` (the logistic mean is clipped to [0, 1])."""
    params = tf.cast(params, tf.float32)
    loc = params[..., :channels]
    if likelihood == "bernoulli":
        return tf.sigmoid(loc)
    if likelihood == "logistic":
        return tf.clip_by_value(loc, 0.0, 1.0)
    return loc


def posterior_scale_bijector(posterior):
    """Unconstrained encoder outputs -> a positive scale (diagonal) or a Cholesky factor."""
    if posterior == "diagonal":
        return tfb.Chain([tfb.Shift(MIN_POSTERIOR_SCALE), tfb.Softplus()])
    return tfb.FillScaleTriL(diag_bijector=tfb.Softplus(), diag_shift=MIN_POSTERIOR_SCALE)


def num_posterior_scale_params(posterior, latent_dim):
    return latent_dim if posterior == "diagonal" else latent_dim * (latent_dim + 1) // 2


def make_posterior(posterior, loc, scale):
    """`q(z | x)`: `scale` is the stddev vector (diagonal) or the lower-triangular factor."""
    if posterior == "diagonal":
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)
    return tfd.MultivariateNormalTriL(loc=loc, scale_tril=scale)


def reparameterize(posterior, loc, scale, eps):
    """`z = loc + scale @ eps` for noise `eps` of shape `(k, B, d)`; returns `(k, B, d)`."""
    if posterior == "diagonal":
        return loc + scale * eps
    return loc + tf.linalg.matvec(scale, eps)


def make_prior(prior, latent_dim, mixture_params=None):
    """`p(z)`: standard normal, or a mixture of diagonal Gaussians from `mixture_params`."""
    if prior == "normal":
        return tfd.MultivariateNormalDiag(loc=tf.zeros([latent_dim]),
                                          scale_diag=tf.ones([latent_dim]))
    logits, locs, raw_scales = mixture_params
    return tfd.MixtureSameFamily(
        mixture_distribution=tfd.Categorical(logits=tf.convert_to_tensor(logits)),
        components_distribution=tfd.MultivariateNormalDiag(
            loc=tf.convert_to_tensor(locs),
            scale_diag=tf.nn.softplus(tf.convert_to_tensor(raw_scales)) + MIN_POSTERIOR_SCALE),
    )


def kl_divergence(q, p, z=None):
    """`KL(q || p)` per example: analytic when TFP registers one, else Monte Carlo.

    Args:
        q: posterior with batch shape `(B,)`.
        p: prior.
        z: samples `(k, B, d)` from `q`, used by the Monte Carlo estimate
            `mean_k [log q(z) - log p(z)]`.

    Returns:
        `((B,) KL, analytic: bool)`.
    """
    try:
        return tfd.kl_divergence(q, p), True
    except NotImplementedError as e:
        if z is None:
            raise ValueError("No analytic KL for these distributions; pass samples z.") from e
        return tf.reduce_mean(q.log_prob(z) - p.log_prob(z), axis=0), False


def logmeanexp(log_w, axis=0):
    k = tf.cast(tf.shape(log_w)[axis], log_w.dtype)
    return tf.reduce_logsumexp(log_w, axis=axis) - tf.math.log(k)


def bits_per_dim_offset(likelihood, num_dims):
    """Nats to add to `-log p(x)` so a continuous density on 8-bit data scaled to [0, 1]
    reads as a code length: each pixel's bin has width 1/255."""
    if likelihood == "gaussian":
        return num_dims * math.log(NUM_BINS - 1)
    return 0.0


def to_numpy(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)
