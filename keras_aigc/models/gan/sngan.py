"""SNGAN: spectral normalization on every discriminator layer, hinge loss."""

import keras

from keras_aigc.layers.spectral_norm import SpectralNormalization
from keras_aigc.models.gan.dcgan import build_dcgan_generator, check_hidden_units
from keras_aigc.models.gan.gan import GAN
from keras_aigc.models.gan.wgan_gp import check_image_args


def build_sngan_discriminator(image_shape, d_filters, kernel_size, power_iterations=1,
                              name="discriminator", hidden_units=None, stride1_convs=True):
    """Conv stack where every weight layer is spectrally normalized
    (`keras_aigc.layers.SpectralNormalization`: `W / sigma(W)` with the gradient through sigma).

    Each entry of `d_filters` gives a stride-1 3x3 conv and a stride-2 `kernel_size`
    conv (the "standard CNN" of Miyato et al. 2018, Table 3), LeakyReLU(0.1), then a
    spectrally normalized linear layer to one logit. With `hidden_units`, a spectrally
    normalized dense layer of that width (LeakyReLU) comes before the logit, as in the
    InfoGAN discriminator Lucic et al. 2018 use for MNIST. With `stride1_convs=False` each
    entry gives only the stride-2 conv: the InfoGAN/DCGAN discriminator's convolutions
    (with d_filters (64, 128) and a dense 1024 at 28x28: 13 M multiply-adds per image
    instead of 47 M).
    """
    def sn(layer):
        return SpectralNormalization(layer, power_iterations=power_iterations,
                                                  name=f"sn_{layer.name}")

    x_in = keras.Input(tuple(image_shape), name="image")
    x = x_in
    for i, filters in enumerate(d_filters):
        if stride1_convs:
            x = sn(keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{i}a"))(x)
            x = keras.layers.LeakyReLU(negative_slope=0.1, name=f"conv{i}a_act")(x)
        x = sn(keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same",
                                   name=f"conv{i}b"))(x)
        x = keras.layers.LeakyReLU(negative_slope=0.1, name=f"conv{i}b_act")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if hidden_units:
        x = sn(keras.layers.Dense(hidden_units, name="hidden"))(x)
        x = keras.layers.LeakyReLU(negative_slope=0.1, name="hidden_act")(x)
    x = sn(keras.layers.Dense(1, name="logit"))(x)
    # The logit leaves in float32 whatever the policy.
    out = keras.layers.Activation("linear", dtype="float32", name="logit_float32")(x)
    return keras.Model(x_in, out, name=name)


@keras.saving.register_keras_serializable(package="keras_aigc")
class SNGAN(GAN):
    """GAN with a spectrally normalized discriminator and the hinge loss.

    Every convolution and dense layer of the discriminator is wrapped in
    `keras_aigc.layers.SpectralNormalization`, which divides its kernel by a power-iteration
    estimate of its largest singular value inside the graph (so the gradient flows through
    that estimate, as in the paper; Keras' own wrapper assigns the normalized kernel and
    blocks it), so that each layer is (about) 1-Lipschitz.

    Args:
        image_shape: tuple. `(H, W, C)` of the images. Defaults to `(28, 28, 1)`.
        latent_dim: int. Size of the latent vector. Defaults to `100`.
        g_filters: tuple of int. Generator channels, base resolution first (see
            `build_dcgan_generator`). Defaults to `(256, 128, 64)`.
        d_filters: tuple of int. Discriminator channels per resolution.
            Defaults to `(64, 128)`.
        kernel_size: int. Size of the strided kernels. Defaults to `4`.
        power_iterations: int. Power iterations per training call. Defaults to `1`.
        g_hidden_units: int or None. Width of a fully connected layer between the latent
            and the generator's projection (see `build_dcgan_generator`). Defaults to None.
        d_hidden_units: int or None. Width of a spectrally normalized dense layer before
            the logit. Defaults to None.
        d_stride1_convs: bool. Whether each discriminator resolution starts with a
            stride-1 3x3 conv before its strided conv (Miyato et al.'s "standard CNN").
            `False` keeps only the strided convs, as the InfoGAN/DCGAN discriminator does,
            for about a quarter of the discriminator's FLOPs at MNIST size. Defaults to `True`.
        sync_batchnorm: bool. Synchronized batch norm in the generator under
            tf.distribute. Defaults to `True`.
        loss: str. Defaults to `"hinge"`.
        **kwargs: `d_steps`, `seed`, `ema_decay`, `diff_augment` and the other `GAN`
            arguments.

    `compile()` defaults to `Adam(2e-4, beta_1=0.5, beta_2=0.999)` (setting C of the
    paper, one D step per G step).

    Example:

    ```python
    gan = keras_aigc.models.SNGAN(image_shape=(28, 28, 1))
    gan.compile()
    gan.fit(keras_aigc.data.load("npz:mnist.npz", batch_size=64), epochs=1)
    ```

    Reference:
        Miyato, Kataoka, Koyama, Yoshida. Spectral Normalization for Generative
        Adversarial Networks, ICLR 2018.
    """

    architecture_args = ("image_shape", "g_filters", "d_filters", "kernel_size", "power_iterations",
                         "sync_batchnorm", "g_hidden_units", "d_hidden_units",
                         "d_stride1_convs")

    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, g_filters=(256, 128, 64),
                 d_filters=(64, 128), kernel_size=4, power_iterations=1, sync_batchnorm=True,
                 loss="hinge", g_hidden_units=None, d_hidden_units=None,
                 d_stride1_convs=True, **kwargs):
        image_shape = check_image_args(image_shape, g_filters, d_filters)
        check_hidden_units(g_hidden_units=g_hidden_units, d_hidden_units=d_hidden_units)
        if isinstance(power_iterations, bool) or not isinstance(power_iterations, int) \
                or power_iterations < 1:
            raise ValueError("power_iterations must be an integer >= 1, got "
                             f"power_iterations={power_iterations!r}.")
        if not isinstance(d_stride1_convs, bool):
            raise ValueError("d_stride1_convs must be true or false, got "
                             f"d_stride1_convs={d_stride1_convs!r}.")
        generator = build_dcgan_generator(image_shape, latent_dim, g_filters, kernel_size,
                                          sync_batchnorm, hidden_units=g_hidden_units)
        discriminator = build_sngan_discriminator(image_shape, d_filters, kernel_size,
                                                  power_iterations, hidden_units=d_hidden_units,
                                                  stride1_convs=d_stride1_convs)
        super().__init__(generator=generator, discriminator=discriminator,
                         latent_dim=latent_dim, loss=loss, **kwargs)
        self.g_filters = tuple(int(f) for f in g_filters)
        self.d_filters = tuple(int(f) for f in d_filters)
        self.kernel_size = int(kernel_size)
        self.power_iterations = power_iterations
        self.sync_batchnorm = bool(sync_batchnorm)
        self.g_hidden_units = g_hidden_units
        self.d_hidden_units = d_hidden_units
        self.d_stride1_convs = d_stride1_convs

    def default_optimizer(self, which):
        del which
        return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5, beta_2=0.999)
