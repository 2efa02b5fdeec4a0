"""The Gated PixelCNN: an autoregressive image model with an exact likelihood."""

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.export.export_utils import LOG_PROB, NOISE, Signature, TensorInfo
from keras_aigc.models.autoregressive import pixel_distributions as pd
from keras_aigc.models.autoregressive.masked_conv2d import MaskedConv2D
from keras_aigc.models.base import GenerativeModel
from keras_aigc.models.base import positive_int as _positive_int
from keras_aigc.models.one_optimizer_compile import OneOptimizerCompile


def _gate(a):
    """`tanh(a[:F]) * sigmoid(a[F:])` over the channels of `(B, H, W, 2F)` (a split on an
    explicit axis: tf2onnx cannot convert an ellipsis slice whose input rank it does not
    know, as inside the sampler's loops)."""
    content, gate = tf.split(a, 2, axis=3)
    return tf.tanh(content) * tf.sigmoid(gate)


def _one_row(row, full):
    """`row`, a one-row slice of `full` (B, H, W, C), with its static shape set."""
    row.set_shape([full.shape[0], 1, full.shape[2], full.shape[3]])
    return row


def _static(t):
    """`t` through a Reshape to its own static shape (batch free): a no-op that states the
    rank and sizes to converters which lost them (tf2onnx inside loop bodies)."""
    return tf.reshape(t, [-1, *t.shape[1:]])


def _down_shift(x):
    """Row `i` gets row `i - 1` (zeros in row 0)."""
    return tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


@keras.saving.register_keras_serializable(package="keras_aigc")
class PixelCNN(OneOptimizerCompile, GenerativeModel):
    """Gated PixelCNN: `p(x) = prod_i p(x_i | x_<i)` over pixels in raster order.

    Two stacks of causal convolutions (see `MaskedConv2D`) remove the blind spot of the
    original PixelCNN: the vertical stack sees every row above a pixel, the horizontal
    stack the pixels to its left, and each layer is a gated block `tanh(a) * sigmoid(b)`
    with the vertical stack's (down-shifted) pre-activations added to the horizontal
    one, a residual connection on the horizontal stack, and an optional class bias in
    both. The per-pixel output distribution is a `tfp.distributions` object chosen by
    `distribution` (see `pixel_distributions`); inside a pixel, channels are ordered
    R -> G -> B by channel-group masks (Bernoulli, Categorical) or by the mixture's
    linear coupling (logistic mixture).

    Training minimises the exact negative log-likelihood, averaged over the *global*
    batch (no noise is drawn, so a step under `MirroredStrategy` equals the same step on
    one device). Trackers: `nll` (nats per image) and `bits_per_dim`.

    Sampling is driven by uniform noise `u (n, H, W, C)`: each channel of each pixel is
    the inverse CDF of its conditional at `u`, so a noise tensor always gives the same
    image. It runs as one `tf.function` of nested `tf.while_loop`s. The fast path computes
    the vertical stack once per row and then only the horizontal stack of that one row per
    pixel (exact: the horizontal convolutions never look at other rows), instead of the
    whole network per pixel (`fast=False`, kept for reference and benchmarks).

    Args:
        image_shape: tuple. `(H, W, C)`. Defaults to `(28, 28, 1)`.
        distribution: str. `"bernoulli"` (binarized images), `"categorical"` (256-way,
            8-bit) or `"logistic_mixture"` (PixelCNN++ discretized logistic mixture,
            8-bit RGB). Defaults to `"bernoulli"`.
        num_classes: int or None. Class-conditional when set. Defaults to `None`.
        filters: int. Channels of each stack (a multiple of C for the masked
            distributions). Defaults to `64`.
        num_layers: int. Gated blocks. Defaults to `7`.
        kernel_size: int. Odd kernel size of the blocks after the first. Defaults to `3`.
        first_kernel_size: int. Odd kernel size of the first block. Defaults to `7`.
        num_mixtures: int. Logistic components for `"logistic_mixture"`. Defaults to `5`.

    Example:

    ```python
    import keras_aigc as ka
    ds = ka.data.load("digits", scaling="sigmoid", binarize="dynamic", batch_size=64)
    model = ka.models.PixelCNN((32, 32, 1), distribution="bernoulli")
    model.compile()
    model.fit(ds, epochs=5)
    images = model.generate(16, seed=0)
    nll = -model.log_likelihood(images)   # exact, nats per image
    ```

    Reference:
        van den Oord et al., Conditional Image Generation with PixelCNN Decoders, 2016.
        Salimans et al., PixelCNN++, 2017.
    """

    config_args = ("image_shape", "distribution", "num_classes", "filters", "num_layers",
                   "kernel_size", "first_kernel_size", "num_mixtures")
    family = "autoregressive"
    # The whole sampler is exported: its nested while loops become a SavedModel while
    # loop, a TFLite WHILE and an ONNX Loop, so one file samples an image per call and the
    # same uniform noise gives the same image in Keras and in all three formats (bit for
    # bit, checked). The sampler restates static shapes inside its loops and avoids ops
    # tf2onnx cannot convert (see `sample_from_noise_tensor`, `keras_aigc.export.onnx.
    # register_missing_ops`).
    export_formats = ("saved_model", "tflite", "onnx")
    export_format_notes = {
        "triton": "Triton's configuration for the ONNX Loop sampler and its noise input has "
                  "not been checked; serve the bundle with keras-aigc-serve (ONNX Runtime "
                  "or LiteRT) instead"}
    export_quantization_note = (
        "the sampler thresholds each pixel's CDF against uniform noise, so a quantized "
        "network flips pixels and every later pixel depends on them (no parity is "
        "possible), and a log-likelihood is a sum over all pixels that quantization error "
        "biases")
    evaluation = "likelihood"
    exact_likelihood = True
    latent_dim = None

    def __init__(self, image_shape=(28, 28, 1), distribution="bernoulli", num_classes=None,
                 filters=64, num_layers=7, kernel_size=3, first_kernel_size=7, num_mixtures=5,
                 **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(image_shape)
        if len(image_shape) != 3 or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                for d in image_shape):
            raise ValueError(f"image_shape must be (H, W, C) positive integers, got "
                             f"image_shape={image_shape!r}.")
        pd.check_distribution(distribution)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.distribution = distribution
        self.num_classes = None if num_classes is None else _positive_int("num_classes",
                                                                          num_classes)
        # Optionally conditional: the class says False (no num_classes by default), each
        # model says whether it trains on (images, labels).
        self.conditional = self.num_classes is not None
        self.filters = _positive_int("filters", filters)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.num_mixtures = _positive_int("num_mixtures", num_mixtures)
        for name, k in (("kernel_size", kernel_size), ("first_kernel_size", first_kernel_size)):
            if _positive_int(name, k) % 2 == 0:
                raise ValueError(f"{name} must be odd, got {name}={k!r}.")
        self.kernel_size, self.first_kernel_size = int(kernel_size), int(first_kernel_size)
        channels = self.image_shape[-1]
        self.groups = pd.channel_groups(distribution, channels)
        if self.filters % self.groups:
            raise ValueError(
                f"filters={filters} must be a multiple of the image channels ({channels}) "
                f"for distribution={distribution!r}: the channel masks split the filters "
                "into one group per channel.")
        self.value_range = (0.0, 1.0)
        self.num_dims = int(np.prod(self.image_shape))
        self.num_params = pd.num_params(distribution, channels, self.num_mixtures)

        f2 = 2 * self.filters
        self.v_convs, self.v_to_h, self.h_convs, self.h_outs = [], [], [], []
        self.cond_v, self.cond_h = [], []
        for i in range(self.num_layers):
            k = self.first_kernel_size if i == 0 else self.kernel_size
            self.v_convs.append(MaskedConv2D(f2, "vertical", k, name=f"v_conv{i}"))
            self.v_to_h.append(MaskedConv2D(f2, "pointwise", name=f"v_to_h{i}"))
            self.h_convs.append(MaskedConv2D(f2, "horizontal", k, "A" if i == 0 else "B",
                                             self.groups, name=f"h_conv{i}"))
            self.h_outs.append(MaskedConv2D(self.filters, "pointwise", 1, "B", self.groups,
                                            name=f"h_out{i}"))
            if self.num_classes is not None:
                # The last block's vertical output feeds nothing (its contribution to
                # the horizontal stack is taken before the class bias), so it has no
                # cond_v: a bias there would get no gradient.
                if i < self.num_layers - 1:
                    self.cond_v.append(keras.layers.Dense(f2, name=f"cond_v{i}"))
                self.cond_h.append(keras.layers.Dense(f2, name=f"cond_h{i}"))
        self.head = [MaskedConv2D(self.filters, "pointwise", 1, "B", self.groups,
                                  name="head_hidden"),
                     MaskedConv2D(self.num_params, "pointwise", 1, "B", self.groups,
                                  name="head_params")]
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.bpd_tracker = keras.metrics.Mean(name="bits_per_dim")
        self._functions = {}
        # Built here, not in `build()`: Keras locks a model's layer tracking after a
        # `build()` call, and the sampler's tf.functions are created lazily later.
        self.build_networks()
        self.built = True

    def build_networks(self):
        """Runs the network once on a zero image (and a zero one-hot label)."""
        h, w, c = self.image_shape
        x = tf.zeros((1, h, w, c))
        onehot = None if self.num_classes is None else tf.zeros((1, self.num_classes))
        self.network(x, onehot)

    # ------------------------------------------------------------------ network
    def _conv(self, layer, x, kernels):
        if kernels is None:
            return layer(x)
        # The sampler (given kernels) restates each conv input's static shape: inside the
        # nested loops tf2onnx loses the shapes of elementwise results and leaves a Conv
        # whose input has no known rank unconverted (an invalid ONNX file). A Reshape to a
        # constant shape is free here and tells tf2onnx the rank.
        if None not in x.shape[1:]:
            x = _static(x)
        return layer(x, kernel=kernels[layer.name])

    def masked_kernels(self):
        """`{layer name: masked kernel}` of every masked convolution, for the sampler."""
        layers = self.v_convs + self.v_to_h + self.h_convs + self.h_outs + self.head
        return {layer.name: layer.masked_kernel() for layer in layers}

    def vertical(self, x, onehot, kernels=None):
        """Vertical stack on network-space images `(B, H', W, C)`: per block, the
        down-shifted contribution to the horizontal stack `(B, H', W, 2F)` (class bias
        included). Row `i` of it depends on rows `< i` only."""
        v, out = x, []
        for i in range(self.num_layers):
            pre = self._conv(self.v_convs[i], v, kernels)
            to_h = self._conv(self.v_to_h[i], _down_shift(pre), kernels)
            if onehot is not None:
                to_h = to_h + self.cond_h[i](onehot)[:, None, None, :]
            out.append(to_h)
            if i == self.num_layers - 1:
                break  # the last block's vertical output feeds nothing
            if onehot is not None:
                pre = pre + self.cond_v[i](onehot)[:, None, None, :]
            v = _gate(pre)
        return out

    def horizontal(self, x, to_h, kernels=None):
        """Horizontal stack and output head on rows `x (B, R, W, C)` given the vertical
        contributions of the same rows: params `(B, R, W, P)`."""
        h = x
        for i in range(self.num_layers):
            gated = _gate(self._conv(self.h_convs[i], h, kernels) + to_h[i])
            out = self._conv(self.h_outs[i], gated, kernels)
            h = out if i == 0 else h + out
        hidden = self._conv(self.head[0], tf.nn.relu(h), kernels)
        return self._conv(self.head[1], tf.nn.relu(hidden), kernels)

    def network(self, x, onehot=None):
        """Per-pixel distribution parameters `(B, H, W, P)` of images `x` in [0, 1]."""
        xin = pd.network_input(self.distribution, x)
        return self.horizontal(xin, self.vertical(xin, onehot))

    def call(self, inputs, training=False):
        """Distribution parameters for `images` or `(images, labels)`."""
        if isinstance(inputs, (tuple, list)):
            x, labels = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        else:
            x, labels = inputs, None
        return self.network(x, self.onehot(labels) if labels is not None else None)

    # ----------------------------------------------------------------- likelihood
    def log_prob(self, x, onehot=None):
        """Exact `log p(x)` per image, `(B,)` float32 tensor (x in [0, 1])."""
        params = self.network(x, onehot)
        per_pixel = pd.log_prob(self.distribution, params, x, self.image_shape[-1],
                                self.num_mixtures)
        return tf.reduce_sum(per_pixel, axis=[1, 2])

    def per_pixel_log_prob(self, x, onehot=None):
        """`log p(x_ij | x_<ij)` summed over channels, `(B, H, W)`."""
        params = self.network(x, onehot)
        return pd.log_prob(self.distribution, params, x, self.image_shape[-1],
                           self.num_mixtures)

    # ------------------------------------------------------------------ sampling
    def sample_from_noise_tensor(self, noise, onehot=None, fast=True, teacher=None):
        """Images `(B, H, W, C)` in [0, 1] from uniform noise `(B, H, W, C)`, and the
        exact `log p` `(B,)` of each image accumulated from the sampler's conditionals.

        Graph code (nested `tf.while_loop`s over rows, then pixels and channels), to be
        called inside a `tf.function`. With `teacher` images the loop writes their values
        instead of sampling (teacher forcing), which gives `log p(teacher)` through the
        sampler's own conditionals; `noise` is then unused.
        """
        height, width, channels = self.image_shape
        steps = pd.channel_steps(self.distribution, channels)
        dist, k = self.distribution, self.num_mixtures
        noise = tf.cast(noise, tf.float32)

        def choose(log_pmf, u, true_value):
            if teacher is None:
                idx = pd.inverse_cdf(log_pmf, u)
            else:
                idx = pd.to_index(dist, true_value)
            lp = tf.gather(log_pmf, tf.cast(idx, tf.int32), axis=1, batch_dims=1)
            return pd.from_index(dist, idx), lp

        def pixel_values(params, x_pixel, u, c, t_pixel):
            """New values `(B, C)`, the channel mask `(C,)` they go to, and their log p."""
            if steps == channels:  # one channel per network pass
                log_pmf = pd.channel_log_pmf(dist, params, x_pixel, c, channels, k)
                mask = tf.one_hot(c, channels)
                value, lp = choose(log_pmf, tf.gather(u, c, axis=-1),
                                   tf.gather(t_pixel, c, axis=-1))
                return value[:, None] * mask, mask, lp
            lp = 0.0
            for ch in range(channels):  # the mixture orders channels itself
                log_pmf = pd.channel_log_pmf(dist, params, x_pixel, tf.constant(ch),
                                             channels, k)
                value, lp_c = choose(log_pmf, u[:, ch], t_pixel[:, ch])
                x_pixel = x_pixel + value[:, None] * tf.one_hot(ch, channels)
                lp = lp + lp_c
            return x_pixel, tf.ones([channels]), lp

        target = noise if teacher is None else tf.cast(teacher, tf.float32)
        # Masked kernels once, outside the loops, not once per pixel; the loop bodies
        # then read no variables.
        kernels = self.masked_kernels() if fast else None

        def row_body(i, x, logp):
            x, noise_, target_ = _static(x), _static(noise), _static(target)
            # Rows get their static shape (B, 1, W, ...): a slice at a loop index has an
            # unknown height, which converters cannot always resolve.
            if fast:
                to_h = [_one_row(t[:, i:i + 1], t) for t in
                        self.vertical(pd.network_input(dist, x), onehot, kernels)]

            def pixel_body(s, x, logp):
                # Every tensor entering a loop body (carried or captured) gets its static
                # shape restated (`_static`): tf2onnx does not carry those shapes into an
                # ONNX Loop body, and slices and Convs whose input has no known rank are
                # left unconverted (an invalid file).
                x, logp = _static(x), tf.reshape(logp, [-1])
                noise_b, target_b = _static(noise_), _static(target_)
                j, c = s // steps, s % steps
                if fast:
                    row = _one_row(pd.network_input(dist, x[:, i:i + 1]), x)
                    rows = [_static(t) for t in to_h]
                    params = self.horizontal(row, rows, kernels)[:, 0, j]
                else:
                    params = self.network(x, onehot)[:, i, j]
                # Per-pixel tensors with their static shapes restated (see above).
                params = tf.reshape(params, [-1, params.shape[-1]])
                new, mask, lp = pixel_values(params, _static(x[:, i, j]),
                                             _static(noise_b[:, i, j]), c,
                                             _static(target_b[:, i, j]))
                where = (tf.one_hot(i, height)[:, None, None]
                         * tf.one_hot(j, width)[None, :, None] * mask[None, None, :])
                return s + 1, x + where[None] * new[:, None, None, :], logp + lp

            _, x, logp = tf.while_loop(lambda s, x, logp: s < width * steps, pixel_body,
                                       (tf.constant(0), x, logp))
            return i + 1, x, logp

        _, x, logp = tf.while_loop(
            lambda i, x, logp: i < height, row_body,
            (tf.constant(0), tf.zeros_like(noise), tf.zeros(tf.shape(noise)[:1])))
        return x, logp

    def _function(self, name):
        if name in self._functions:
            return self._functions[name]
        h, w, c = self.image_shape
        image_spec = tf.TensorSpec((None, h, w, c), tf.float32)
        label_spec = tf.TensorSpec((None,), tf.int32)
        cond = self.num_classes is not None
        if name in ("sample_fast", "sample_naive"):
            fast = name == "sample_fast"

            def fn(noise, labels):
                return self.sample_from_noise_tensor(
                    noise, self.onehot(labels) if cond else None, fast=fast)[0]
        elif name in ("sample_with_log_prob", "teacher_log_prob"):
            teacher = name == "teacher_log_prob"

            def fn(noise, labels):
                onehot = self.onehot(labels) if cond else None
                if teacher:
                    return self.sample_from_noise_tensor(noise, onehot, teacher=noise)[1]
                return self.sample_from_noise_tensor(noise, onehot)
        elif name == "log_prob":
            def fn(x, labels):
                return self.log_prob(x, self.onehot(labels) if cond else None)
        elif name == "per_pixel":
            def fn(x, labels):
                return self.per_pixel_log_prob(x, self.onehot(labels) if cond else None)
        self._functions[name] = tf.function(fn, input_signature=[image_spec, label_spec],
                                            reduce_retracing=True)
        return self._functions[name]

    # ------------------------------------------------------------- data helpers
    def normalize_labels(self, labels, n):
        """Labels for `n` images as int32 numpy `(n,)` (`None` when unconditional);
        `None` cycles the classes, `np.arange(n) % num_classes`."""
        n = _positive_int("n", n)
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is unconditional: it takes no "
                                 "labels (pass labels=None).")
            return None
        if labels is None:
            return (np.arange(n) % self.num_classes).astype(np.int32)
        arr = np.asarray(keras.ops.convert_to_numpy(labels) if keras.ops.is_tensor(labels)
                         else labels)
        if arr.ndim == 0:
            arr = np.full(n, arr)
        if arr.dtype.kind not in "iu" and not (
                arr.dtype.kind == "f" and np.all(np.isfinite(arr))
                and np.all(arr == np.round(arr))):
            raise ValueError(f"labels must be integers, got labels of dtype {arr.dtype}.")
        if arr.shape != (n,):
            raise ValueError(f"labels must hold one label per image: expected shape ({n},), "
                             f"got labels of shape {arr.shape}.")
        bad = arr[(arr < 0) | (arr >= self.num_classes)]
        if bad.size:
            raise ValueError(f"labels must be in [0, {self.num_classes}) (num_classes="
                             f"{self.num_classes}), got labels={bad[:5].tolist()}.")
        return arr.astype(np.int32)

    def _labels_tensor(self, labels, n):
        labels = self.normalize_labels(labels, n)
        return tf.constant(np.zeros(n, np.int32) if labels is None else labels)

    def check_images(self, x):
        """User images as float32 numpy, checked against `image_shape` and the values
        the distribution models."""
        x = np.asarray(keras.ops.convert_to_numpy(x) if keras.ops.is_tensor(x) else x,
                       np.float32)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected (N, "
                             f"{', '.join(map(str, self.image_shape))}) for this model's "
                             f"image_shape={self.image_shape}.")
        if self.distribution == "bernoulli" and not np.all((x == 0.0) | (x == 1.0)):
            raise ValueError(
                f"distribution='bernoulli' needs binary pixels in {{0, 1}}, got values in "
                f"[{x.min():.4g}, {x.max():.4g}]. Binarize the data first, e.g. "
                "keras_aigc.data.load(..., scaling='sigmoid', binarize='dynamic').")
        if x.size and (x.min() < 0.0 or x.max() > 1.0):
            raise ValueError(f"distribution={self.distribution!r} needs pixels in [0, 1] "
                             f"(8-bit values / 255), got values in [{x.min():.4g}, "
                             f"{x.max():.4g}]; load with scaling='sigmoid'.")
        return x

    # -------------------------------------------------------------- public API
    def log_likelihood(self, x, labels=None, batch_size=256):
        """Exact `log p(x)` per image in nats, float64 numpy `(N,)`.

        Args:
            x: images `(N, H, W, C)` in [0, 1] (binary for `"bernoulli"`).
            labels: int `(N,)` for conditional models (default cycles the classes).
            batch_size: int. Images per network call. Defaults to `256`.
        """
        x = self.check_images(x)
        batch_size = _positive_int("batch_size", batch_size)
        labels = self._labels_tensor(labels, len(x)) if len(x) else None
        fn, out = self._function("log_prob"), []
        for i in range(0, len(x), batch_size):
            out.append(fn(tf.constant(x[i:i + batch_size]),
                          labels[i:i + batch_size]).numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0,), np.float64)

    def bits_per_dim(self, x, labels=None, batch_size=256):
        """`-log p(x)` in bits per pixel dimension, float64 numpy `(N,)`."""
        ll = self.log_likelihood(x, labels=labels, batch_size=batch_size)
        return pd.bits_per_dim(-ll, self.num_dims)

    def noise(self, n, seed=None):
        """Uniform noise `(n, H, W, C)` in [0, 1) as float32 numpy; reproducible for an int
        seed. `generate` samples from it."""
        rng = np.random.default_rng(seed)
        return rng.random((n, *self.image_shape), dtype=np.float32)

    def decode_latents(self, z, labels):
        """Images for one batch of uniform noise `z (B, H, W, C)` (this family's
        randomness) and int32 `labels (B,)` or `None`: a float32 tensor in [0, 1]."""
        z = tf.convert_to_tensor(z, tf.float32)
        if labels is None:
            labels = tf.zeros(tf.shape(z)[:1], tf.int32)
        return self._function("sample_fast")(z, tf.cast(labels, tf.int32))

    def sample_from_noise(self, noise, labels=None, batch_size=256, fast=True):
        """Images `(N, H, W, C)` float32 numpy in [0, 1] from uniform noise.

        Args:
            noise: `(N, H, W, C)` floats in [0, 1).
            labels: int `(N,)` for conditional models (default cycles the classes).
            batch_size: int. Images sampled together. Defaults to `256`.
            fast: bool. The row-cached sampler (`True`) or the whole network per pixel.
        """
        noise = np.asarray(noise, np.float32)
        if noise.ndim != 4 or tuple(noise.shape[1:]) != self.image_shape:
            raise ValueError(f"noise has shape {noise.shape}, expected (N, "
                             f"{', '.join(map(str, self.image_shape))}).")
        if noise.size and (noise.min() < 0.0 or noise.max() >= 1.0):
            raise ValueError(f"noise must be uniform in [0, 1), got values in "
                             f"[{noise.min():.4g}, {noise.max():.4g}].")
        batch_size = _positive_int("batch_size", batch_size)
        labels = self._labels_tensor(labels, len(noise))
        fn = self._function("sample_fast" if fast else "sample_naive")
        outs = [fn(tf.constant(noise[i:i + batch_size]), labels[i:i + batch_size]).numpy()
                for i in range(0, len(noise), batch_size)]
        return np.concatenate(outs).astype(np.float32)

    def sampler_log_prob(self, x, labels=None):
        """`log p(x)` per image accumulated from the sampler's own per-pixel conditionals
        (teacher forcing through the fast sampling loop): float64 numpy `(N,)`. Equals
        `log_likelihood(x)`; kept public so that equality can be checked."""
        x = self.check_images(x)
        labels = self._labels_tensor(labels, len(x))
        return self._function("teacher_log_prob")(tf.constant(x), labels).numpy().astype(
            np.float64)

    def generate(self, n, seed=None, labels=None, batch_size=256):
        """Samples `n` images, float32 numpy `(n, H, W, C)` in [0, 1].

        Args:
            n: int. Number of images.
            seed: int. Seeds the uniform noise, hence the images.
            labels: int or `n` ints for conditional models (default cycles the classes);
                `None` for unconditional ones.
            batch_size: int. Images sampled together.
        """
        n = _positive_int("n", n)
        labels = self.normalize_labels(labels, n)
        return self.sample_from_noise(self.noise(n, seed), labels, batch_size=batch_size)

    def export_signatures(self):
        """`generate`: uniform `noise` (B, H, W, C) in [0, 1) [, int32 `labels`] -> `image`
        in [0, 1], the fast sampler's nested while loops (the same noise gives the same
        image as `sample_from_noise`); `log_prob`: `image` [, `labels`] -> exact
        per-image log-likelihood in nats."""
        h, w, c = self.image_shape
        cond = self.num_classes is not None

        def onehot(labels):
            if not cond:
                return None
            return self.onehot(keras.ops.convert_to_tensor(labels[0], "int32"))

        def generate(noise, *labels):
            noise = tf.convert_to_tensor(noise, tf.float32)
            return {"image": self.sample_from_noise_tensor(noise, onehot(labels), fast=True)[0]}

        def log_prob(image, *labels):
            image = tf.convert_to_tensor(image, tf.float32)
            return {"log_prob": self.log_prob(image, onehot(labels))}

        noise = TensorInfo("noise", NOISE, "float32", (None, h, w, c))
        return [
            Signature("generate", generate, self.signature_inputs(noise), [self.image_info()]),
            Signature("log_prob", log_prob, self.signature_inputs(self.image_info()),
                      [TensorInfo("log_prob", LOG_PROB, "float32", (None,))]),
        ]

    # ----------------------------------------------------------------- training
    # compile / get_compile_config / compile_from_config: OneOptimizerCompile.
    compile_objective = "the exact negative log-likelihood"

    @property
    def metrics(self):
        return [self.nll_tracker, self.bpd_tracker]

    def _check_batch(self, x):
        return self.check_image_batch(
            x, "binary" if self.distribution == "bernoulli" else "unit",
            f"distribution={self.distribution!r}")

    def _per_example_nll(self, data):
        x, labels = self.unpack_batch(data)
        x = self._check_batch(x)
        return -self.log_prob(x, self.onehot(labels) if self.num_classes else None)

    def _update_trackers(self, nll):
        self.nll_tracker.update_state(nll)
        self.bpd_tracker.update_state(pd.bits_per_dim(nll, self.num_dims))

    def train_step(self, data):
        def objective():
            nll = self._per_example_nll(data)
            return nll, nll

        self._update_trackers(self.minimize_global_mean(objective))
        return self.step_logs({m.name: m.result() for m in self.metrics})

    def test_step(self, data):
        self._update_trackers(self._per_example_nll(data))
        return self.step_logs({m.name: m.result() for m in self.metrics})

    # ------------------------------------------------------------ serialization
    def get_config(self):
        config = super().get_config()
        for name in self.config_args:
            value = getattr(self, name)
            config[name] = list(value) if isinstance(value, tuple) else value
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
