"""Class-conditional batch normalization (the generator norm of SNGAN/BigGAN)."""

import keras


@keras.saving.register_keras_serializable(package="keras_aigc")
class ConditionalBatchNorm(keras.layers.Layer):
    """Batch norm whose scale and shift are looked up per class: `[x, labels] -> y`.

    `y = gamma[label] * BN(x) + beta[label]`, with `BN` a batch normalization without its
    own scale and shift, and `gamma` (initialised to ones) and `beta` (zeros) one row per
    class. Under tf.distribute, `synchronized=True` computes the batch statistics over
    the global batch.

    Args:
        num_classes: int. Number of classes.
        momentum: float. Moving-statistics momentum. Defaults to `0.9`.
        epsilon: float. Defaults to `1e-5`.
        synchronized: bool. Cross-replica batch statistics. Defaults to `True`.

    Example:

    ```python
    cbn = keras_aigc.layers.ConditionalBatchNorm(num_classes=10)
    y = cbn([keras.ops.ones((4, 8, 8, 16)), keras.ops.array([0, 1, 2, 3])])
    ```

    Reference:
        - [de Vries et al., Modulating early visual processing by language, 2017](
          https://arxiv.org/abs/1707.00683)
        - [Miyato & Koyama, cGANs with Projection Discriminator, 2018](
          https://arxiv.org/abs/1802.05637)
    """

    def __init__(self, num_classes, momentum=0.9, epsilon=1e-5, synchronized=True, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
        self.num_classes = num_classes
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.synchronized = bool(synchronized)
        self.bn = keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, center=False, scale=False,
            synchronized=synchronized, name="bn")

    def build(self, input_shape):
        x_shape = input_shape[0]
        channels = int(x_shape[-1])
        self.bn.build(x_shape)
        self.gamma = self.add_weight(shape=(self.num_classes, channels), initializer="ones",
                                     name="gamma")
        self.beta = self.add_weight(shape=(self.num_classes, channels), initializer="zeros",
                                    name="beta")

    def call(self, inputs, training=None):
        x, labels = inputs
        labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
        y = self.bn(x, training=training)
        gamma = keras.ops.take(self.gamma, labels, axis=0)
        beta = keras.ops.take(self.beta, labels, axis=0)
        shape = (-1,) + (1,) * (len(x.shape) - 2) + (int(x.shape[-1]),)
        gamma = keras.ops.cast(keras.ops.reshape(gamma, shape), y.dtype)
        beta = keras.ops.cast(keras.ops.reshape(beta, shape), y.dtype)
        return y * gamma + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "momentum": self.momentum,
                       "epsilon": self.epsilon, "synchronized": self.synchronized})
        return config
