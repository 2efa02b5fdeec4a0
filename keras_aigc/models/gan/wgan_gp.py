"""WGAN-GP: Wasserstein loss, a batch-norm-free critic and the gradient penalty."""

import keras

from keras_aigc.models.gan.dcgan import build_dcgan_generator, check_hidden_units
from keras_aigc.models.gan.gan import GAN

CRITIC_NORMALIZATIONS = (None, "layer")


def build_wgan_critic(image_shape, d_filters, kernel_size, name="critic", hidden_units=None,
                      normalization=None):
    """Strided Conv2D + LeakyReLU stack, [a Dense layer], and one linear score; no batch
    normalization.

    The gradient penalty is defined per example, so the critic must not mix examples of
    a batch (Gulrajani et al. 2017, section 4). `normalization="layer"` puts layer
    normalization where the DCGAN/InfoGAN discriminator has batch norm (every conv but the
    first, and the dense layer): Gulrajani et al.'s recommended drop-in, which normalizes each
    example on its own. On a conv output it is `GroupNormalization(groups=1)` (statistics over
    H, W and C, a scale and offset per channel, as in their code); on the dense layer
    `LayerNormalization`.
    """
    if normalization not in CRITIC_NORMALIZATIONS:
        raise ValueError(f"d_normalization must be one of {CRITIC_NORMALIZATIONS}, got "
                         f"d_normalization={normalization!r}.")
    if normalization == "layer" and len(d_filters) < 2 and not hidden_units:
        raise ValueError("d_normalization='layer' normalizes every conv but the first and the "
                         f"dense layer, and this critic has neither (d_filters={tuple(d_filters)!r},"
                         " d_hidden_units=None): add a conv to d_filters or set d_hidden_units.")
    x_in = keras.Input(tuple(image_shape), name="image")
    x = x_in
    for i, filters in enumerate(d_filters):
        x = keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same",
                                name=f"down{i}")(x)
        if normalization == "layer" and i > 0:
            x = keras.layers.GroupNormalization(groups=1, epsilon=1e-5, name=f"down{i}_ln")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name=f"down{i}_act")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if hidden_units:
        x = keras.layers.Dense(hidden_units, name="hidden")(x)
        if normalization == "layer":
            x = keras.layers.LayerNormalization(epsilon=1e-5, name="hidden_ln")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.2, name="hidden_act")(x)
    out = keras.layers.Dense(1, dtype="float32", name="score")(x)
    return keras.Model(x_in, out, name=name)


def check_image_args(image_shape, g_filters, d_filters):
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3:
        raise ValueError(f"image_shape must be (H, W, C), got image_shape={image_shape!r}.")
    if len(g_filters) < 2:
        raise ValueError(f"g_filters needs at least 2 entries, got g_filters={tuple(g_filters)!r}.")
    if not d_filters:
        raise ValueError("d_filters needs at least 1 entry, got d_filters=().")
    return image_shape


@keras.saving.register_keras_serializable(package="keras_aigc")
class WGANGP(GAN):
    """Wasserstein GAN with gradient penalty.

    The generator is the DCGAN generator; the critic is a strided convolution stack
    without batch normalization. The critic is updated `d_steps` (5) times per
    generator update with the Wasserstein loss plus `penalty_weight` (10) times the
    gradient penalty on random interpolates of real and generated images.

    Args:
        image_shape: tuple. `(H, W, C)` of the images. Defaults to `(28, 28, 1)`.
        latent_dim: int. Size of the latent vector. Defaults to `100`.
        g_filters: tuple of int. Generator channels, base resolution first (see
            `build_dcgan_generator`). Defaults to `(256, 128, 64)`.
        d_filters: tuple of int. Critic channels per stride-2 conv.
            Defaults to `(64, 128)`.
        kernel_size: int. Convolution kernel size. Defaults to `5`.
        sync_batchnorm: bool. Synchronized batch norm in the generator under
            tf.distribute. Defaults to `True`.
        loss: str. Defaults to `"wasserstein"`.
        d_steps: int. Critic updates per generator update. Defaults to `5`.
        penalty: str. Defaults to `"gradient_penalty"`
            (`"one_sided_gradient_penalty"` is the variant of Petzka et al. 2018).
        penalty_weight: float. lambda. Defaults to `10.0`.
        g_hidden_units: int or None. Width of a fully connected layer between the latent
            and the generator's projection (see `build_dcgan_generator`). Defaults to None.
        d_hidden_units: int or None. Width of a dense layer (LeakyReLU) before the
            critic's score. Defaults to None.
        d_normalization: None or `"layer"`. Per-example layer normalization in the critic
            where a DCGAN discriminator has batch norm (every conv but the first, and the
            dense layer); see `build_wgan_critic`. Defaults to None (no normalization).
        **kwargs: `seed`, `ema_decay`, `diff_augment` and the other `GAN` arguments.

    `compile()` defaults to `Adam(1e-4, beta_1=0.5, beta_2=0.9)` for both networks.

    Example:

    ```python
    gan = keras_aigc.models.WGANGP(image_shape=(28, 28, 1), latent_dim=100)
    gan.compile()
    gan.fit(keras_aigc.data.load("npz:mnist.npz", batch_size=64), epochs=1)
    ```

    Reference:
        Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville. Improved Training of
        Wasserstein GANs, NeurIPS 2017.
    """

    architecture_args = ("image_shape", "g_filters", "d_filters", "kernel_size", "sync_batchnorm",
                         "g_hidden_units", "d_hidden_units", "d_normalization")

    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, g_filters=(256, 128, 64),
                 d_filters=(64, 128), kernel_size=5, sync_batchnorm=True, loss="wasserstein",
                 d_steps=5, penalty="gradient_penalty", penalty_weight=10.0, g_hidden_units=None,
                 d_hidden_units=None, d_normalization=None, **kwargs):
        image_shape = check_image_args(image_shape, g_filters, d_filters)
        check_hidden_units(g_hidden_units=g_hidden_units, d_hidden_units=d_hidden_units)
        generator = build_dcgan_generator(image_shape, latent_dim, g_filters, kernel_size,
                                          sync_batchnorm, hidden_units=g_hidden_units)
        critic = build_wgan_critic(image_shape, d_filters, kernel_size,
                                   hidden_units=d_hidden_units, normalization=d_normalization)
        super().__init__(generator=generator, discriminator=critic, latent_dim=latent_dim,
                         loss=loss, d_steps=d_steps, penalty=penalty,
                         penalty_weight=penalty_weight, **kwargs)
        self.g_filters = tuple(int(f) for f in g_filters)
        self.d_filters = tuple(int(f) for f in d_filters)
        self.kernel_size = int(kernel_size)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.g_hidden_units = g_hidden_units
        self.d_hidden_units = d_hidden_units
        self.d_normalization = d_normalization

    def default_optimizer(self, which):
        del which
        return keras.optimizers.Adam(learning_rate=1e-4, beta_1=0.5, beta_2=0.9)
