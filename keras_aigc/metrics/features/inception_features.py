"""InceptionV3 pool features (2048-d) through `keras.applications`, for FID/KID."""

import os

import numpy as np

from keras_aigc.metrics.features import _images

WEIGHTS_ENV = "KERAS_AIGC_INCEPTION_WEIGHTS"
WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
               + WEIGHTS_FILE)


def keras_cache_path():
    """Where `keras.applications` caches the no-top InceptionV3 weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models", WEIGHTS_FILE)


class InceptionFeatures:
    """2048-d average-pool features of InceptionV3 (ImageNet weights).

    Images of any size and value range are mapped to Inception's [-1, 1] input, resized
    to 299x299 (bilinear) and grayscale is tiled to 3 channels.

    The ImageNet weights come from the network. Nothing is downloaded unless
    `allow_download=True`; otherwise the weights are looked up, in order, at `weights`, at
    the path in the `KERAS_AIGC_INCEPTION_WEIGHTS` environment variable, and in the Keras
    cache (`$KERAS_HOME/models/`, default `~/.keras/models/`).

    These are Keras' ImageNet InceptionV3 weights, not the 2015 TF graph of the original
    FID code, so absolute values are "FID-like" and comparable only with each other.

    Args:
        weights: str or None. Path of an `.h5` / `.weights.h5` file of
            `keras.applications.InceptionV3(include_top=False, pooling="avg")`.
        batch_size: int. Images per forward pass. Defaults to `32`.
        allow_download: bool. Let Keras download the weights when no file is found.
            Defaults to `False`.

    Example:

    ```python
    extractor = keras_aigc.metrics.features.InceptionFeatures(weights="inception_notop.h5")
    feats = extractor(images, value_range=(-1, 1))   # (N, 2048) float32
    ```

    Reference:
        Szegedy et al. Rethinking the Inception Architecture for Computer Vision, 2016.
    """

    name = "inception"
    dim = 2048
    input_size = 299

    def __init__(self, weights=None, batch_size=32, allow_download=False):
        self.weights = weights
        self.batch_size = int(batch_size)
        self.allow_download = bool(allow_download)
        self.weights_path = self._resolve_weights()
        self.model = self._build()

    def _resolve_weights(self):
        if self.weights is not None:
            if not os.path.isfile(self.weights):
                raise FileNotFoundError(
                    f"InceptionV3 weights file not found: weights={self.weights!r}.")
            return self.weights
        env = os.environ.get(WEIGHTS_ENV)
        if env:
            if not os.path.isfile(env):
                raise FileNotFoundError(
                    f"{WEIGHTS_ENV}={env!r} does not point to a file. Set it to the path of "
                    f"{WEIGHTS_FILE}.")
            return env
        cached = keras_cache_path()
        if os.path.isfile(cached):
            return cached
        if self.allow_download:
            return "imagenet"
        raise FileNotFoundError(
            "InceptionV3 weights are not available offline (searched weights=None, "
            f"${WEIGHTS_ENV} unset, Keras cache {cached!r}). Download {WEIGHTS_URL} on a "
            f"machine with network access, then either pass weights=PATH (CLI: "
            f"--inception-weights PATH), set {WEIGHTS_ENV}=PATH, or copy the file to "
            f"{cached!r}. Or pass allow_download=True to let Keras fetch it now."
        )

    def _build(self):
        import keras

        try:
            return keras.applications.InceptionV3(
                include_top=False, pooling="avg", weights=self.weights_path,
                input_shape=(self.input_size, self.input_size, 3))
        except Exception as e:  # noqa: BLE001 - download/IO errors come in many types
            if self.weights_path == "imagenet":
                raise FileNotFoundError(
                    f"Could not download the InceptionV3 weights from {WEIGHTS_URL} ({e}). "
                    f"Without network, provide the file with weights=PATH or "
                    f"{WEIGHTS_ENV}=PATH.") from e
            raise ValueError(
                f"Could not load InceptionV3 weights from {self.weights_path!r}: {e}. The file "
                "must hold keras.applications.InceptionV3(include_top=False, "
                "pooling='avg') weights.") from e

    def preprocess(self, images, value_range=(-1.0, 1.0)):
        """Maps `(N, H, W, C)` images in `value_range` to Inception's 299x299x3 [-1, 1]."""
        import tensorflow as tf

        x = _images.check_images(images)
        if x.shape[-1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got shape {x.shape}.")
        x = _images.rescale(x, _images.check_value_range(value_range), (-1.0, 1.0))
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        return tf.image.resize(x, (self.input_size, self.input_size), method="bilinear")

    def __call__(self, images, value_range=(-1.0, 1.0)):
        """`(N, 2048)` float32 pool features of images in `value_range`."""
        x = _images.check_images(images)

        def run(batch):
            return self.model(self.preprocess(batch, value_range), training=False)

        return _images.batched(run, x, self.batch_size).astype(np.float32)
