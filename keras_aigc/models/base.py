"""`GenerativeModel`: the contract every keras_aigc model family implements.

Training, the CLI, callbacks, metrics and export ask a model these questions and never
guess its kind from its attributes:

- `latent_dim`, `image_shape`, `value_range`, `num_classes` (None when unconditional);
- `unpack_batch(data)` and `normalize_labels(labels, n)`;
- `generate(n, seed=None, labels=None, batch_size=256)`, a template over the family's
  `decode_latents(z, labels)`;
- `export_signatures()`: the functions the model exports, each input with a role, and
  `export_formats`: the bundle formats it supports (with `export_format_notes` saying why
  a format is not);
- `build()`, which creates the variables of every network from the model's own shapes
  through the family's `build_networks()`;
- `get_config()` from one declared list of constructor arguments, `config_args`.
"""

import keras
import numpy as np

from keras_aigc.distribute.keras_fixes import MultiWorkerFitMixin
from keras_aigc.export.export_utils import IMAGE, LABEL, LATENT, Signature, TensorInfo
from keras_aigc.layers.label_onehot import one_hot_labels
from keras_aigc.models.preset import PresetMixin
from keras_aigc_runtime import postprocess as bundle_format

# What `keras-aigc evaluate` measures: "samples" (FID, KID, precision/recall of generated
# images) for every model, "likelihood" (test ELBO, NLL, bits/dim) for models with
# `elbo` and `log_likelihood`.
EVALUATIONS = ("samples", "likelihood")


def new_seed():
    """A fresh int seed in `[0, 2**31 - 1)`, stored in the config when drawn."""
    return int(np.random.SeedSequence().generate_state(1)[0] % (2**31 - 1))


def positive_int(name, value):
    """`int(value)`, or a ValueError naming `name` when it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={value!r}.")
    return int(value)


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


class GenerativeModel(PresetMixin, MultiWorkerFitMixin, keras.Model):
    """Base class of keras_aigc generative models: one contract for every family.

    A family subclasses this, sets the attributes below in its constructor, and
    implements `decode_latents(z, labels)`, `export_signatures()` and, when its networks
    are not built in the constructor, `build_networks()`; `build`, `generate`,
    label handling, configs, the CLI, callbacks and `keras_aigc.export.export_bundle`
    then work without further code.

    Attributes:
        latent_dim: int, or `None` for a model without a latent.
        image_shape: tuple `(H, W, C)` of the images.
        value_range: tuple `(low, high)` of the generated pixels.
        num_classes: int for class-conditional models, `None` otherwise.
        conditional: bool, on the class: whether its models take `num_classes` and
            train on `(images, labels)` (known before a model exists, e.g. to load data).
            A family that is conditional only when given `num_classes` (PixelCNN) keeps
            `False` on the class and sets it on each model.
        family: str. Informative name written to export manifests (`"gan"`, `"vae"`,
            ...); nothing decides behaviour from it.
        evaluation: str. `"samples"`, or `"likelihood"` for models that also provide
            `elbo(x, labels=None)` and `log_likelihood(x, labels=None, num_samples=...)`
            per example in nats (see `keras-aigc evaluate`).
        exact_likelihood: bool. `True` when `log_likelihood(x, labels=None)` is exact
            (autoregressive models: no `elbo`, no `num_samples`); `False` for a bound or an
            importance-sampled estimate.
        config_args: tuple of str. Constructor arguments `get_config` stores, each read
            from `config_value(name)` (by default the attribute of that name).
        export_formats: tuple of str. The bundle formats (`keras_aigc.export.FORMATS`)
            the family exports to; `export_bundle(formats=None)` writes those of them
            that are written by default (not `"triton"`). Defaults to all of them.
        export_format_notes: dict. For each format a family leaves out, why; the
            refusal of `export_bundle` quotes it.
        fixed_batch_formats: dict. Formats of `export_formats` that convert only with
            fixed batch sizes (`export_bundle(batch_sizes=...)`), each with the reason a
            dynamic batch fails; `formats=None` leaves them out of a dynamic-batch export.
        export_quantization_note: str or None. When set, why quantized variants cannot
            hold the model's outputs; `export_bundle` then refuses `quantize` and
            `onnx_quantize` with this reason. Defaults to `None` (quantization allowed).

    Example:

    ```python
    class Linear(keras_aigc.models.GenerativeModel):
        config_args = ("latent_dim",)

        def __init__(self, latent_dim=4, **kwargs):
            super().__init__(**kwargs)
            self.latent_dim, self.image_shape = latent_dim, (2, 2, 1)
            self.net = keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(4),
                                         keras.layers.Reshape((2, 2, 1))])

        def decode_latents(self, z, labels):
            return self.net(z, training=False)

        def export_signatures(self):
            return [self.image_signature("generate", lambda z: {"image": self.net(z)})]
    ```
    """

    latent_dim = None
    image_shape = None
    value_range = (-1.0, 1.0)
    num_classes = None
    conditional = False
    family = "generative"
    evaluation = "samples"
    exact_likelihood = False
    config_args = ()
    export_formats = ("saved_model", "tflite", "onnx", "triton")
    export_format_notes = {}
    fixed_batch_formats = {}
    export_quantization_note = None

    # --------------------------------------------------------------- training
    def training_steps(self):
        """Training steps taken so far (the step optimizer's `iterations`), `None` before
        `compile`. One-optimizer models count their optimizer's updates; GANs override
        this with the generator's (one per training step, whatever `d_steps` is)."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is None:
            return None
        return int(keras.ops.convert_to_numpy(optimizer.iterations))

    @classmethod
    def takes_image_shape(cls):
        """Whether the constructor takes `image_shape` (declared in `config_args`), which
        `keras-aigc train` then fills from the dataset when the config leaves it out."""
        return "image_shape" in cls.config_args

    @classmethod
    def trains_on_labels(cls, config):
        """Whether a model of this class built from constructor kwargs `config` trains on
        `(images, labels)`: a conditional family, or one that is conditional only when
        given `num_classes` (PixelCNN)."""
        return bool(cls.conditional or config.get("num_classes") is not None)

    # ------------------------------------------------------------------- data
    def unpack_batch(self, data):
        """Returns `(images, labels or None)` from what the dataset yields.

        Conditional models raise a ValueError naming the fix when a batch has no labels.
        """
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, labels = data, None
        if self.num_classes is not None and labels is None:
            raise ValueError(
                f"{type(self).__name__} trains on (images, labels) batches; load the data "
                "with keras_aigc.data.load(..., labels=True).")
        return images, labels

    def normalize_labels(self, labels, n):
        """Labels for `n` images as int32 numpy `(n,)`.

        Unconditional models accept only `labels=None` (and return `None`). For
        conditional models, `None` cycles through the classes, `np.arange(n) %
        num_classes`; one int is repeated `n` times; otherwise `n` integers in
        `[0, num_classes)` (an integer dtype: `1.0` is refused, as the runtime does).

        Raises:
            ValueError: labels given to an unconditional model, or not integers, not of
                shape `(n,)`, or outside `[0, num_classes)`.
        """
        n = positive_int("n", n)
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is unconditional: it takes no labels "
                                 "(pass labels=None).")
            return None
        if keras.ops.is_tensor(labels):
            labels = keras.ops.convert_to_numpy(labels)
        # The runtime's rule, so that Keras and an exported bundle pick the same labels.
        return bundle_format.normalize_labels(labels, n, self.num_classes)

    def onehot(self, labels):
        """One-hot float32 `(B, num_classes)` of int labels `(B,)`, `None` for an
        unconditional model: the function behind `keras_aigc.layers.LabelOneHot`, for
        families whose networks are not functional models (functional networks use the
        layer itself). Eager labels outside `[0, num_classes)` raise a ValueError."""
        if self.num_classes is None:
            return None
        return one_hot_labels(labels, self.num_classes)

    # ------------------------------------------------------------- generating
    def latents(self, n, seed=None):
        """`n` latents from the prior as float32 numpy; reproducible for an int seed.

        The default is `N(0, I)`; families with another prior override it.
        """
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, self.latent_dim)).astype(np.float32)

    def latent_prior(self):
        """`p(z)` as plain numbers for export manifests: `{"type": "normal", ...}`."""
        return {"type": "normal", "latent_dim": self.latent_dim}

    def decode_latents(self, z, labels):
        """Images for one batch of latents `z (B, latent_dim)` and int32 `labels (B,)` (or
        `None`), as a float tensor or array `(B, H, W, C)` in `value_range`."""
        raise NotImplementedError(f"{type(self).__name__} must implement decode_latents(z, "
                                  "labels).")

    def generate(self, n, seed=None, labels=None, batch_size=256):
        """Generates `n` images in `value_range` as float32 numpy `(n, H, W, C)`.

        Args:
            n: int. Number of images.
            seed: int. Makes the latents, hence the images, reproducible.
            labels: int or `n` ints in `[0, num_classes)` for conditional models; the
                default cycles the classes (see `normalize_labels`). Must be `None` for
                unconditional models.
            batch_size: int. Images per `decode_latents` call.
        """
        n = positive_int("n", n)
        labels = self.normalize_labels(labels, n)
        return self.generate_from_latents(self.latents(n, seed), labels, batch_size=batch_size)

    def generate_from_latents(self, z, labels=None, batch_size=256):
        """Images for given latents `z (N, latent_dim)`, `batch_size` at a time."""
        batch_size = positive_int("batch_size", batch_size)
        z = np.asarray(keras.ops.convert_to_numpy(z), np.float32)
        if z.ndim != 2 or (self.latent_dim is not None and z.shape[1] != self.latent_dim):
            raise ValueError(f"z has shape {z.shape}, expected (N, {self.latent_dim}).")
        labels = self.normalize_labels(labels, len(z))
        outs = []
        for i in range(0, len(z), batch_size):
            zb = keras.ops.convert_to_tensor(z[i:i + batch_size])
            lb = (None if labels is None
                  else keras.ops.convert_to_tensor(labels[i:i + batch_size], "int32"))
            outs.append(np.asarray(keras.ops.convert_to_numpy(self.decode_latents(zb, lb)),
                                   np.float32))
        return np.concatenate(outs)

    def bits_per_dim_from_log_likelihood(self, log_likelihood):
        """`-log p(x)` in bits per pixel dimension from `log p(x)` in nats, for
        `evaluation="likelihood"` models; exact for discrete likelihoods. Families with a
        density on continuous pixels add their bin width (see `VAE`)."""
        dims = float(np.prod(self.image_shape))
        return -np.asarray(log_likelihood, np.float64) / (dims * np.log(2.0))

    def check_image_batch(self, x, pixels=None, setting=""):
        """`x` as float32 after checking its shape against `image_shape` and its pixels.

        Args:
            x: tensor. A batch of images.
            pixels: `None` (any values), `"binary"` ({0, 1}) or `"unit"` ([0, 1]).
            setting: str. The constructor setting that needs those pixels, named in the
                error (e.g. `"likelihood='bernoulli'"`).
        """
        import tensorflow as tf

        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"Input images have shape {tuple(x.shape)}, expected "
                             f"(batch, {', '.join(map(str, self.image_shape))}) for "
                             f"image_shape={self.image_shape}.")
        x = tf.cast(x, tf.float32)
        if pixels == "binary":
            tf.debugging.assert_equal(
                tf.reduce_all((x == 0.0) | (x == 1.0)), True,
                message=f"{setting} needs binary pixels in {{0, 1}}: binarize the data, e.g. "
                        "keras_aigc.data.load(..., scaling='sigmoid', binarize='dynamic').")
        elif pixels == "unit":
            tf.debugging.assert_equal(
                tf.reduce_all((x >= 0.0) & (x <= 1.0)), True,
                message=f"{setting} needs pixels in [0, 1]: load the data with "
                        "scaling='sigmoid'.")
        elif pixels is not None:
            raise ValueError(f"pixels must be None, 'binary' or 'unit', got {pixels!r}.")
        return x

    # -------------------------------------------------------------- building
    def build_networks(self):
        """Creates the variables of the model's networks from its own shapes (no data
        needed). Families whose constructors build everything keep this no-op."""

    def build(self, input_shape=None):
        """Builds the model: `build_networks()`, then marks it built.

        `input_shape` is accepted for Keras (which passes the shape of the first batch,
        or `None` when a `.keras` file is loaded) and ignored: every family knows its
        shapes from its config. Families override `build_networks`, not this.
        """
        del input_shape
        self.build_networks()
        self.built = True

    # -------------------------------------------------------------- training
    def build_optimizers(self):
        """Creates the optimizer variables of a compiled model (before restoring a
        backup into them); a no-op before `compile`. Families with several optimizers
        (GANs) override it."""
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            with self.distribute_strategy.scope():
                optimizer.build(self.trainable_variables)

    # ---------------------------------------------------------------- export
    def export_signatures(self):
        """The functions the model exports, as a list of
        `keras_aigc.export.Signature`; the first one produces images."""
        raise NotImplementedError(f"{type(self).__name__} must implement export_signatures().")

    def check_export_formats(self, formats, batch_sizes=None):
        """Refuses a format this model does not export to (or not with a dynamic batch,
        `batch_sizes=None`), before anything is written.

        Raises:
            ValueError: naming the model, the format and why (`export_format_notes`,
                `fixed_batch_formats`), and what it does support.
        """
        name = type(self).__name__
        for fmt in formats:
            if fmt not in self.export_formats:
                why = self.export_format_notes.get(fmt, "it is not in its export_formats")
                supported = list(self.export_formats) or "none"
                raise ValueError(f"{name} cannot be exported to format {fmt!r}: {why}. "
                                 f"Formats {name} supports: {supported}.")
            if batch_sizes is None and fmt in self.fixed_batch_formats:
                raise ValueError(
                    f"{name} cannot be exported to format {fmt!r} with a dynamic batch: "
                    f"{self.fixed_batch_formats[fmt]}. Pass fixed batch sizes "
                    f"(batch_sizes=(1, 64); CLI --batch-sizes 1 64) or leave {fmt!r} out.")

    def check_export_quantization(self, quantizations):
        """Refuses quantized variants (`export_bundle(quantize=..., onnx_quantize=...)`)
        when the model says they cannot hold its outputs (`export_quantization_note`),
        before anything is written.

        Raises:
            ValueError: naming the model, the quantizations and why.
        """
        if quantizations and self.export_quantization_note:
            raise ValueError(f"{type(self).__name__} cannot be exported with quantized "
                             f"variants {list(quantizations)}: "
                             f"{self.export_quantization_note}. Export it without "
                             "quantize/onnx_quantize (fp32 files).")

    def export_tracked(self):
        """Layers/models whose variables the exported functions use."""
        return [self]

    @property
    def exports_ema_weights(self):
        """Whether the exported functions use an EMA copy of the weights."""
        return False

    def signature_inputs(self, first):
        """`[first]` plus the int32 `labels (B,)` input for conditional models."""
        inputs = [first]
        if self.num_classes is not None:
            inputs.append(TensorInfo("labels", LABEL, "int32", (None,)))
        return inputs

    def latent_input(self):
        return TensorInfo("z", LATENT, "float32", (None, self.latent_dim))

    def image_info(self, name="image"):
        return TensorInfo(name, IMAGE, "float32", (None,) + tuple(self.image_shape))

    def image_signature(self, name, fn):
        """A `name` signature `z [, labels] -> image` (role `latent` [, `label`])."""
        return Signature(name, fn, self.signature_inputs(self.latent_input()),
                         [self.image_info()])

    # --------------------------------------------------------- serialization
    def config_value(self, name):
        """The config value of constructor argument `name` (its attribute by default)."""
        return getattr(self, name)

    def get_config(self):
        config = super().get_config()
        for name in self.config_args:
            config[name] = _jsonable(self.config_value(name))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
