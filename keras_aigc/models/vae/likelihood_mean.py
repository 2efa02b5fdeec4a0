"""`LikelihoodMean`: decoder likelihood parameters -> the mean image."""

import keras

from keras_aigc.models.vae import distributions as dists


@keras.saving.register_keras_serializable(package="keras_aigc")
class LikelihoodMean(keras.layers.Layer):
    """The mean of `p(x | z)` as a float32 image, from the decoder's parameter tensor.

    `sigmoid(logits)` for Bernoulli, the mean for a Gaussian, the location clipped to
    [0, 1] for the discretized logistic. Plain TF ops, so the functional decoder that ends
    with this layer exports to SavedModel, TFLite and ONNX.

    Args:
        likelihood: str. One of `"bernoulli"`, `"gaussian"`, `"logistic"`.
        channels: int. Image channels `C`; the input has `C * p` channels.

    Example:

    ```python
    mean = LikelihoodMean("bernoulli", channels=1)(keras.ops.zeros((2, 28, 28, 1)))
    ```
    """

    def __init__(self, likelihood, channels, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        dists.check_choice("likelihood", likelihood, dists.LIKELIHOODS)
        self.likelihood = likelihood
        self.channels = int(channels)

    def call(self, params):
        return dists.likelihood_mean(self.likelihood, params, self.channels)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        config = super().get_config()
        config.update({"likelihood": self.likelihood, "channels": self.channels})
        return config
