"""VAE evaluation: the chunked importance-sampled `log_likelihood`, the `elbo` estimator and
`bits_per_dim`, memory-bounded whatever the number of samples."""

import math

import numpy as np
import tensorflow as tf

from keras_aigc.models.base import new_seed
from keras_aigc.models.base import positive_int as _positive_int
from keras_aigc.models.vae import distributions as dists

# Decoded images held at once by log_likelihood/elbo (samples x examples in one chunk).
MAX_DECODED_PER_CHUNK = 4096


class VAEEvaluation:
    """Mixed into `VAE`: evaluation on numpy images (and labels for conditional models).

    Uses the model's `image_shape`, `likelihood`, `label_dim`, `latent_dim`, `log_terms`
    and `normalize_labels`.
    """

    def _prepare(self, x, labels):
        """Checks user images (and labels); returns float32 `x` and int32 labels `(N,)`."""
        x = np.asarray(dists.to_numpy(x), dtype=np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"x has shape {tuple(x.shape)}, expected (N, "
                f"{', '.join(map(str, self.image_shape))}) for this model's "
                f"image_shape={self.image_shape}.")
        if self.likelihood == "bernoulli" and not np.all((x == 0.0) | (x == 1.0)):
            raise ValueError(
                f"likelihood='bernoulli' needs binary pixels in {{0, 1}}, got values in "
                f"[{x.min():.4g}, {x.max():.4g}]. Binarize the data first, e.g. "
                "keras_aigc.data.load(..., scaling='sigmoid', binarize='static'), or "
                "(rng.random(x.shape) < x).")
        if self.likelihood == "logistic" and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(
                f"likelihood='logistic' needs 8-bit pixels scaled to [0, 1], got values in "
                f"[{x.min():.4g}, {x.max():.4g}]; load with scaling='sigmoid'.")
        return x, self._prepare_labels(labels, len(x))

    def _prepare_labels(self, labels, n):
        """Int32 labels `(n,)` for the evaluation functions, which need the true labels of
        conditional models (no default); zeros, unused, for unconditional ones."""
        if self.num_classes is not None and labels is None:
            raise ValueError(f"{type(self).__name__} needs labels: an int array of shape "
                             f"({n},) with values in [0, {self.num_classes}).")
        labels = self.normalize_labels(labels, n)
        if labels is None:
            return np.zeros((n,), np.int32)
        return labels

    def _log_weights(self, x, labels, num, seed):
        """`log p(x, z) - log q(z | x)` for `num` samples per example: `(num, B)`."""
        eps = tf.random.stateless_normal(tf.stack([num, tf.shape(x)[0], self.latent_dim]),
                                         seed=seed)
        t = self.log_terms(x, labels if self.label_dim else None, eps, training=False)
        return t["log_px_z"] + t["log_pz"] - t["log_qz"]

    def _log_weight_chunks(self, x, labels, num_samples, seed, batch_size, chunk_size,
                           reduce_chunk):
        """Applies `reduce_chunk` to `(m, B)` log-weight chunks; yields per batch."""
        if self._log_weights_fn is None:
            self._log_weights_fn = tf.function(self._log_weights, input_signature=[
                tf.TensorSpec((None, *self.image_shape), tf.float32),
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((), tf.int32),
                tf.TensorSpec((2,), tf.int64),
            ])
        batch_size = _positive_int("batch_size", batch_size)
        if chunk_size is None:
            chunk_size = max(1, MAX_DECODED_PER_CHUNK // batch_size)
        chunk_size = min(_positive_int("chunk_size", chunk_size), num_samples)
        seed = new_seed() if seed is None else int(seed)
        n_chunks = -(-num_samples // chunk_size)
        for b, start in enumerate(range(0, len(x), batch_size)):
            xb = tf.constant(x[start:start + batch_size])
            yb = tf.constant(labels[start:start + batch_size])
            parts = []
            for c in range(n_chunks):
                m = min(chunk_size, num_samples - c * chunk_size)
                key = tf.constant([seed, b * n_chunks + c], tf.int64)
                parts.append(reduce_chunk(self._log_weights_fn(xb, yb, tf.constant(m), key)))
            yield tf.stack(parts)

    def log_likelihood(self, x, labels=None, num_samples=5000, batch_size=100,
                       chunk_size=None, seed=0):
        """Importance-sampled `log p(x)` per example, in nats (Burda et al. 2015).

        `log (1/K) sum_k p(x, z_k) / q(z_k | x)`, `z_k ~ q(z | x)`: a lower bound in
        expectation that tightens as `K` grows. Samples are processed in chunks, so memory
        is bounded by `batch_size * chunk_size` decoded images whatever `num_samples`,
        and chunks are combined with logsumexp.

        Args:
            x: images `(N, H, W, C)`.
            labels: int `(N,)` for conditional models, else `None`.
            num_samples: int. `K`. Defaults to `5000`.
            batch_size: int. Examples per chunk. Defaults to `100`.
            chunk_size: int. Samples per chunk; defaults to `4096 // batch_size`.
            seed: int. Seed of the importance samples. Defaults to `0`.

        Returns:
            float64 numpy `(N,)`.
        """
        num_samples = _positive_int("num_samples", num_samples)
        x, labels = self._prepare(x, labels)
        out = []
        for lse in self._log_weight_chunks(x, labels, num_samples, seed, batch_size,
                                           chunk_size, lambda lw: tf.reduce_logsumexp(lw, 0)):
            out.append(tf.reduce_logsumexp(tf.cast(lse, tf.float64), 0).numpy()
                       - math.log(num_samples))
        return np.concatenate(out)

    def elbo(self, x, labels=None, num_samples=1, batch_size=100, seed=0):
        """The ELBO per example, in nats: `mean_k [log p(x, z_k) - log q(z_k | x)]`.

        This estimator has zero variance when `q` is the exact posterior (every
        log-weight then equals `log p(x)`). It is unbiased, like the analytic-KL form used
        for training, to which it is equal in expectation.

        Args:
            x: images `(N, H, W, C)`.
            labels: int `(N,)` for conditional models, else `None`.
            num_samples: int. Samples averaged per example. Defaults to `1`.
            batch_size: int. Examples per call. Defaults to `100`.
            seed: int. Defaults to `0`.

        Returns:
            float64 numpy `(N,)`.
        """
        num_samples = _positive_int("num_samples", num_samples)
        x, labels = self._prepare(x, labels)
        out = []
        for sums in self._log_weight_chunks(x, labels, num_samples, seed, batch_size, None,
                                            lambda lw: tf.reduce_sum(lw, 0)):
            out.append(tf.reduce_sum(tf.cast(sums, tf.float64), 0).numpy() / num_samples)
        return np.concatenate(out)

    def bits_per_dim(self, x, labels=None, num_samples=5000, **kwargs):
        """`-log p(x)` in bits per pixel dimension, from `log_likelihood`.

        Exact code lengths for the discrete likelihoods (Bernoulli, discretized logistic);
        for a Gaussian density on 8-bit data scaled to [0, 1] it adds `log 255` nats per
        dimension, the width of a pixel's bin.
        """
        ll = self.log_likelihood(x, labels=labels, num_samples=num_samples, **kwargs)
        return self.bits_per_dim_from_log_likelihood(ll)

    def bits_per_dim_from_log_likelihood(self, log_likelihood):
        """Bits per dimension of `log p(x)` nats, with `log 255` nats per dimension added
        for a Gaussian density on 8-bit data scaled to [0, 1] (see `bits_per_dim`)."""
        offset = dists.bits_per_dim_offset(self.likelihood, self.num_dims)
        return (-np.asarray(log_likelihood, np.float64) + offset) / (
            self.num_dims * math.log(2.0))
