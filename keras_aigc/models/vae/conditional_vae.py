"""ConditionalVAE: class labels condition both the encoder and the decoder."""

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.models.vae.vae import VAE, _positive_int


@keras.saving.register_keras_serializable(package="keras_aigc")
class ConditionalVAE(VAE):
    """A conditional VAE: `q(z | x, y)`, `p(x | z, y)` with a one-hot label `y`.

    The one-hot label is concatenated to the flattened image in the encoder and to `z`
    in the decoder; the prior stays `p(z)`. Datasets yield `(images, labels)`
    (`keras_aigc.data.load(..., labels=True)`), and `generate(n, labels=...)` draws
    images of the given classes.

    Args:
        num_classes: int. Number of label values. Defaults to `10`.
        **kwargs: every other `VAE` argument.

    Example:

    ```python
    ds = keras_aigc.data.load("digits", scaling="sigmoid", binarize="dynamic", labels=True)
    cvae = keras_aigc.models.ConditionalVAE(image_shape=(32, 32, 1), num_classes=10)
    cvae.compile()
    cvae.fit(ds, epochs=5)
    sevens = cvae.generate(8, labels=[7] * 8)
    ```

    Reference:
        Sohn, Lee & Yan, Learning Structured Output Representation using Deep Conditional
        Generative Models, NeurIPS 2015.
    """

    def __init__(self, num_classes=10, **kwargs):
        self.num_classes = _positive_int("num_classes", num_classes)
        super().__init__(**kwargs)

    @property
    def label_dim(self):
        return self.num_classes

    def onehot(self, labels):
        if labels is None:
            raise ValueError("ConditionalVAE needs (images, labels) batches; load the data "
                             "with labels=True.")
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return tf.one_hot(labels, self.num_classes, dtype=tf.float32)

    def _split_call_inputs(self, inputs):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError("ConditionalVAE is called on (images, labels).")
        return inputs[0], self.onehot(inputs[1])

    def _prepare_labels(self, labels, n):
        if labels is None:
            raise ValueError(f"ConditionalVAE needs labels: an int array of shape ({n},) with "
                             f"values in [0, {self.num_classes}).")
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers of shape ({n},), got dtype "
                             f"{labels.dtype} shape {labels.shape}.")
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes}), got values in "
                             f"[{labels.min()}, {labels.max()}].")
        return np.eye(self.num_classes, dtype=np.float32)[labels]

    def generate(self, n, seed=None, labels=None, batch_size=256):
        """Generates `n` images; `labels` defaults to the classes in turn (0, 1, 2, ...)."""
        n = _positive_int("n", n)
        if labels is None:
            labels = np.arange(n) % self.num_classes
        return super().generate(n, seed=seed, labels=labels, batch_size=batch_size)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
