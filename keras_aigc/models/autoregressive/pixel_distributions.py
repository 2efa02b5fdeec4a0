"""Per-pixel output distributions of the PixelCNN, as `tfp.distributions`.

Everything here maps the network's output tensor (`params`, `(..., P)` per pixel) to a
distribution over the pixel's values; only tensors cross the network boundary. Images are
floats in [0, 1]: `{0, 1}` for `"bernoulli"`, multiples of 1/255 for the 8-bit ones.

- `"bernoulli"`: one logit per channel.
- `"categorical"`: 256 logits per channel (softmax over the 8-bit values), laid out
  value-major, `params[..., v * C + c]`, so that channel `c` is group `c % C` of the
  network's channel masks.
- `"logistic_mixture"`: PixelCNN++'s discretized mixture of logistics. A pixel picks one
  of `K` components for all its channels; inside a component channel `c`'s mean is
  shifted linearly by the channels before it (R -> G -> B), which is how the mixture
  respects channel order without channel masks in the network.
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

DISTRIBUTIONS = ("bernoulli", "categorical", "logistic_mixture")
# Smallest log-scale of a logistic component (PixelCNN++ uses -7).
MIN_LOG_SCALE = -7.0


def check_distribution(distribution):
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"Unrecognized distribution={distribution!r}. Supported "
                         f"distributions are: {list(DISTRIBUTIONS)}.")


def num_values(distribution):
    """Number of values a pixel channel takes."""
    return 2 if distribution == "bernoulli" else 256


def num_params(distribution, channels, num_mixtures):
    """Network outputs per pixel."""
    if distribution == "bernoulli":
        return channels
    if distribution == "categorical":
        return 256 * channels
    k = num_mixtures
    return k + 2 * k * channels + k * channels * (channels - 1) // 2


def channel_groups(distribution, channels):
    """Channel groups the network's masks order inside a pixel (1: none)."""
    return 1 if distribution == "logistic_mixture" else channels


def channel_steps(distribution, channels):
    """Network evaluations per pixel when sampling: one per channel when the network
    orders the channels, one when the distribution does (the mixture)."""
    return 1 if distribution == "logistic_mixture" else channels


def to_index(distribution, x):
    """Pixel values in [0, 1] -> value indices (float) in `[0, V)`."""
    x = tf.cast(x, tf.float32)
    return x if distribution == "bernoulli" else tf.round(x * 255.0)


def from_index(distribution, idx):
    idx = tf.cast(idx, tf.float32)
    return idx if distribution == "bernoulli" else idx / 255.0


def network_input(distribution, x):
    """The network sees pixels centred to [-1, 1]."""
    return from_index(distribution, to_index(distribution, x)) * 2.0 - 1.0


def _mixture_parts(params, channels, num_mixtures):
    k, c = num_mixtures, channels
    logits = params[..., :k]
    rest = params[..., k:]
    batch = tf.shape(params)[:-1]
    means = tf.reshape(rest[..., :k * c], tf.concat([batch, [k, c]], 0))
    log_scales = tf.reshape(rest[..., k * c:2 * k * c], tf.concat([batch, [k, c]], 0))
    coeffs = tf.tanh(rest[..., 2 * k * c:])
    return logits, means, tf.maximum(log_scales, MIN_LOG_SCALE), coeffs


def _coupled_means(means, coeffs, x_centred, channels, num_mixtures):
    """Channel `c`'s mean plus `sum_{c' < c} coeff * x_{c'}` (x in [-1, 1]), `(..., K, C)`."""
    cols = [means[..., 0]]
    pair = 0
    for c in range(1, channels):
        m = means[..., c]
        for prev in range(c):
            m = m + coeffs[..., pair * num_mixtures:(pair + 1) * num_mixtures] * \
                x_centred[..., None, prev]
            pair += 1
        cols.append(m)
    return tf.stack(cols, axis=-1)


def _logistic_components(means, log_scales):
    """Discretized logistics over the integers 0..255 (bin width 1, tails at the ends):
    `QuantizedDistribution` takes `ceil(X)`, so shifting the loc by 0.5 centres bin `v`
    on `v`."""
    loc = 127.5 * (means + 1.0) + 0.5
    scale = 127.5 * tf.exp(log_scales)
    return tfd.QuantizedDistribution(tfd.Logistic(loc=loc, scale=scale), low=0.0, high=255.0)


def log_prob(distribution, params, x, channels, num_mixtures=1):
    """Per-pixel `log p(x_ij | x_<ij)` summed over channels: `(..., H, W)`.

    Args:
        params: `(..., H, W, P)` network outputs.
        x: `(..., H, W, C)` images in [0, 1].
    """
    idx = to_index(distribution, x)
    params = tf.cast(params, tf.float32)
    if distribution == "bernoulli":
        # `tfd.Bernoulli(logits).log_prob(idx)`, written out: tfp lowers it to MulNoNan,
        # which ONNX has no operator for.
        return tf.reduce_sum(-tf.nn.sigmoid_cross_entropy_with_logits(labels=idx,
                                                                      logits=params), -1)
    if distribution == "categorical":
        logits = tf.reshape(params, tf.concat([tf.shape(params)[:-1], [256, channels]], 0))
        logits = tf.linalg.matrix_transpose(logits)  # (..., C, 256)
        # `tfd.Categorical(logits).log_prob(v)` is `log_softmax(logits)[v]`; written out
        # because tfp lowers it to SparseSoftmaxCrossEntropyWithLogits, which TFLite has
        # no builtin for, so the exported log_prob signature would not convert.
        log_pmf = tf.nn.log_softmax(logits, -1)
        return tf.reduce_sum(
            tf.reduce_sum(log_pmf * tf.one_hot(tf.cast(idx, tf.int32), 256), -1), -1)
    logits, means, log_scales, coeffs = _mixture_parts(params, channels, num_mixtures)
    centred = idx / 127.5 - 1.0
    means = _coupled_means(means, coeffs, centred, channels, num_mixtures)
    mixture = tfd.MixtureSameFamily(
        tfd.Categorical(logits=logits),
        tfd.Independent(_logistic_components(means, log_scales), reinterpreted_batch_ndims=1))
    return mixture.log_prob(idx)


def channel_log_pmf(distribution, params, x_pixel, c, channels, num_mixtures=1):
    """`log p(x_c = v | x_<c, previous pixels)` for every value `v`: `(B, V)`.

    This is the sampler's conditional. Args: `params (B, P)` for one pixel; `x_pixel
    (B, C)` the pixel's channels in [0, 1] (those before `c` already set); `c` an int
    tensor. For the masked distributions `params` must come from a network pass that saw
    the channels before `c`.
    """
    params = tf.cast(params, tf.float32)
    if distribution == "bernoulli":
        # `tfd.Bernoulli(logits).log_prob([0, 1])`, written out: tfp lowers it to
        # MulNoNan, which ONNX has no operator for. (B, 1) by a constant-shape Reshape, so
        # that tf2onnx knows the rank inside the sampler's loops.
        logit = tf.reshape(tf.gather(params, c, axis=-1), [-1, 1])
        return tf.concat([tf.math.log_sigmoid(-logit), tf.math.log_sigmoid(logit)], 1)
    if distribution == "categorical":
        logits = tf.gather(tf.reshape(params, [-1, 256, channels]), c, axis=-1)
        # `tfd.Categorical(logits).log_prob(v)` for every v, written out: tfp's
        # broadcasting inside the sampler's while loops leaves tf2onnx shapeless slices,
        # and its SparseSoftmaxCrossEntropyWithLogits has no TFLite builtin.
        return tf.nn.log_softmax(logits, -1)
    logits, means, log_scales, coeffs = _mixture_parts(params, channels, num_mixtures)
    idx = to_index(distribution, x_pixel)
    means = _coupled_means(means, coeffs, idx / 127.5 - 1.0, channels, num_mixtures)
    comps = _logistic_components(means, log_scales)  # batch (B, K, C)
    before = tf.cast(tf.range(channels) < c, tf.float32)
    log_w = tf.nn.log_softmax(logits, -1) + tf.reduce_sum(
        comps.log_prob(idx[:, None, :]) * before, -1)  # (B, K)
    comp_c = _logistic_components(tf.gather(means, c, axis=-1),
                                  tf.gather(log_scales, c, axis=-1))  # batch (B, K)
    values = tf.range(256, dtype=tf.float32)[:, None, None]
    lp = comp_c.log_prob(values)  # (256, B, K)
    log_pmf = tf.reduce_logsumexp(log_w + lp, -1) - tf.reduce_logsumexp(log_w, -1)
    return tf.transpose(log_pmf)


def inverse_cdf(log_pmf, u):
    """Value index whose CDF bin holds `u (B,)` in [0, 1): the first `v` with
    `cdf(v) > u`, as float `(B,)`. A given `u` always gives the same value."""
    pmf = tf.exp(log_pmf - tf.reduce_logsumexp(log_pmf, -1, keepdims=True))
    cdf = tf.cumsum(pmf, axis=-1)
    below = tf.cast(cdf[:, :-1] <= u[:, None], tf.float32)
    return tf.reduce_sum(below, -1)


def bits_per_dim(nll_nats, num_dims):
    return nll_nats / (num_dims * math.log(2.0))
