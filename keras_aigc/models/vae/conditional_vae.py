"""ConditionalVAE: class labels condition both the encoder and the decoder."""

import keras

from keras_aigc.models.base import positive_int
from keras_aigc.models.vae.vae import VAE


@keras.saving.register_keras_serializable(package="keras_aigc")
class ConditionalVAE(VAE):
    """A conditional VAE: `q(z | x, y)`, `p(x | z, y)` with a one-hot label `y`.

    Both networks take the integer labels and turn them into one-hot vectors inside
    (`keras_aigc.layers.LabelOneHot`), concatenated to the flattened image in the encoder
    and to `z` in the decoder; the prior stays `p(z)`. Datasets yield `(images, labels)`
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
        self.num_classes = positive_int("num_classes", num_classes)
        super().__init__(**kwargs)

    conditional = True
    config_args = VAE.config_args + ("num_classes",)

    def _split_call_inputs(self, inputs):
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError("ConditionalVAE is called on (images, labels).")
        return inputs[0], inputs[1]
