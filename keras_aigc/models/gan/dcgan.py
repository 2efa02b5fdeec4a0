"""DCGAN: transposed-convolution generator, strided-convolution discriminator."""

import keras

from keras_aigc.models.gan.gan import GAN

PRESETS = {
    # The architecture and the simultaneous update step of the TensorFlow "DCGAN on MNIST"
    # tutorial; our throughput reference.
    "tf_tutorial": {
        "image_shape": (28, 28, 1),
        "latent_dim": 100,
        "g_filters": (256, 128, 64),
        "d_filters": (64, 128),
        "kernel_size": 5,
        "dropout": 0.3,
        "update": "simultaneous",
    },
}


def synchronize_batchnorm(requested):
    """Whether batch norm built now should all-reduce its statistics: as requested.

    Resolving it from the strategy at build time (plain BN under one replica) was tried
    and reverted: whether a model is built inside or outside the strategy scope then
    decided whether two replicas matched one, and it measured no faster (0.97x).
    """
    return bool(requested)


def check_hidden_units(**widths):
    """Raises unless each named width (`g_hidden_units=...`) is None or an integer >= 1."""
    for arg, units in widths.items():
        if units is not None and (isinstance(units, bool) or not isinstance(units, int)
                                  or units < 1):
            raise ValueError(f"{arg} must be None or a positive integer, got {arg}={units!r}.")


def build_dcgan_generator(image_shape, latent_dim, g_filters, kernel_size, sync_batchnorm,
                          name="generator", hidden_units=None):
    """[Dense -> BN, LeakyReLU] -> Dense -> (BN, LeakyReLU) -> Conv2DTranspose stack -> tanh.

    With `hidden_units`, a fully connected layer of that width (batch norm, LeakyReLU)
    comes before the projection to the base resolution, as in the InfoGAN generator that
    Lucic et al. 2018 use for MNIST.

    `g_filters[0]` channels at the base resolution, then a stride-1 transposed conv with
    `g_filters[1]` channels, then one stride-2 transposed conv per remaining entry, and a
    final stride-2 transposed conv to the image channels. The base resolution is therefore
    `H / 2**(len(g_filters) - 1)`.
    """
    height, width, channels = image_shape
    n_up = len(g_filters) - 1
    factor = 2**n_up
    if height % factor or width % factor:
        raise ValueError(
            f"image_shape={tuple(image_shape)} does not fit g_filters={tuple(g_filters)}: "
            f"height and width must be divisible by 2**(len(g_filters) - 1) = {factor}."
        )
    bh, bw = height // factor, width // factor
    sync_batchnorm = synchronize_batchnorm(sync_batchnorm)
    z = keras.Input((latent_dim,), name="z")
    x = z
    if hidden_units:
        x = keras.layers.Dense(hidden_units, use_bias=False, name="hidden")(x)
        x = keras.layers.BatchNormalization(synchronized=sync_batchnorm, name="hidden_bn")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.3, name="hidden_act")(x)
    x = keras.layers.Dense(bh * bw * g_filters[0], use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(synchronized=sync_batchnorm, name="project_bn")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.3, name="project_act")(x)
    x = keras.layers.Reshape((bh, bw, g_filters[0]), name="reshape")(x)
    for i, filters in enumerate(g_filters[1:]):
        x = keras.layers.Conv2DTranspose(filters, kernel_size, strides=1 if i == 0 else 2,
                                         padding="same", use_bias=False, name=f"up{i}")(x)
        x = keras.layers.BatchNormalization(synchronized=sync_batchnorm, name=f"up{i}_bn")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.3, name=f"up{i}_act")(x)
    x = keras.layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                                     use_bias=False, name="to_image")(x)
    # float32 at the boundary whatever the mixed-precision policy.
    out = keras.layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model(z, out, name=name)


def build_dcgan_discriminator(image_shape, d_filters, kernel_size, dropout,
                              batchnorm=False, sync_batchnorm=True, name="discriminator",
                              hidden_units=None):
    """Strided Conv2D stack with LeakyReLU and dropout, [a Dense layer], then one logit.

    With `hidden_units`, a fully connected layer of that width (batch norm when
    `batchnorm`, LeakyReLU) comes before the logit, as in the InfoGAN discriminator.

    With `batchnorm`, every conv after the first is followed by batch norm, as in the
    DCGAN paper (real and fake batches go through D separately, so each is normalised
    by its own statistics).
    """
    x_in = keras.Input(tuple(image_shape), name="image")
    x = x_in
    for i, filters in enumerate(d_filters):
        x = keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same",
                                use_bias=not (batchnorm and i > 0), name=f"down{i}")(x)
        if batchnorm and i > 0:
            x = keras.layers.BatchNormalization(
                synchronized=synchronize_batchnorm(sync_batchnorm), name=f"down{i}_bn")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.3, name=f"down{i}_act")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"down{i}_dropout")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if hidden_units:
        x = keras.layers.Dense(hidden_units, use_bias=not batchnorm, name="hidden")(x)
        if batchnorm:
            x = keras.layers.BatchNormalization(
                synchronized=synchronize_batchnorm(sync_batchnorm), name="hidden_bn")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.3, name="hidden_act")(x)
    out = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(x_in, out, name=name)


@keras.saving.register_keras_serializable(package="keras_aigc")
class DCGAN(GAN):
    """Deep convolutional GAN (Radford et al. 2015) for `model.fit`.

    Args:
        image_shape: tuple. `(H, W, C)` of the images. Defaults to `(28, 28, 1)`.
        latent_dim: int. Size of the latent vector. Defaults to `100`.
        g_filters: tuple of int. Generator channels, base resolution first; see
            `build_dcgan_generator`. Defaults to `(256, 128, 64)`.
        d_filters: tuple of int. Discriminator channels per stride-2 conv.
            Defaults to `(64, 128)`.
        kernel_size: int. Convolution kernel size. Defaults to `5`.
        dropout: float. Discriminator dropout rate. Defaults to `0.3`.
        d_batchnorm: bool. Batch norm after every discriminator conv but the first (the
            DCGAN paper's discriminator). Defaults to `False` (the TF tutorial's).
        g_hidden_units: int or None. Width of a fully connected layer between the latent
            and the projection to the base resolution (InfoGAN's generator has 1024).
            Defaults to `None` (no such layer).
        d_hidden_units: int or None. Width of a fully connected layer before the
            discriminator's logit (InfoGAN's has 1024; batch norm on it with
            `d_batchnorm`). Defaults to `None`.
        sync_batchnorm: bool. Batch statistics over the global batch under
            tf.distribute (`BatchNormalization(synchronized=True)`), so that training on
            N replicas computes what one device would. Only takes effect when the model
            is built in a strategy scope with more than one replica; with one replica the
            layers are plain batch norm. Defaults to `True`.
        **kwargs: `loss`, `d_steps`, `seed` and the other `GAN` arguments.

    Example:

    ```python
    gan = keras_aigc.models.DCGAN.from_preset("tf_tutorial")
    gan.compile()
    gan.fit(keras_aigc.data.load("npz:mnist.npz", batch_size=256), epochs=1)
    images = gan.generate(16, seed=0)
    ```

    Reference:
        Radford, Metz, Chintala. Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks, 2015.
    """

    presets = PRESETS

    architecture_args = ("image_shape", "g_filters", "d_filters", "kernel_size", "dropout",
                         "d_batchnorm", "sync_batchnorm", "g_hidden_units", "d_hidden_units")

    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, g_filters=(256, 128, 64),
                 d_filters=(64, 128), kernel_size=5, dropout=0.3, d_batchnorm=False,
                 sync_batchnorm=True, g_hidden_units=None, d_hidden_units=None, **kwargs):
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape!r}.")
        if len(g_filters) < 2:
            raise ValueError(f"g_filters needs at least 2 entries, got {tuple(g_filters)!r}.")
        if not d_filters:
            raise ValueError("d_filters needs at least 1 entry.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        check_hidden_units(g_hidden_units=g_hidden_units, d_hidden_units=d_hidden_units)
        generator = build_dcgan_generator(image_shape, latent_dim, g_filters, kernel_size,
                                          sync_batchnorm, hidden_units=g_hidden_units)
        if not isinstance(d_batchnorm, bool):
            raise ValueError(f"d_batchnorm must be true or false, got {d_batchnorm!r}.")
        discriminator = build_dcgan_discriminator(image_shape, d_filters, kernel_size, dropout,
                                                  batchnorm=d_batchnorm,
                                                  sync_batchnorm=sync_batchnorm,
                                                  hidden_units=d_hidden_units)
        super().__init__(generator=generator, discriminator=discriminator,
                         latent_dim=latent_dim, **kwargs)
        self.g_filters = tuple(int(f) for f in g_filters)
        self.d_filters = tuple(int(f) for f in d_filters)
        self.kernel_size = int(kernel_size)
        self.dropout = float(dropout)
        self.d_batchnorm = d_batchnorm
        self.sync_batchnorm = bool(sync_batchnorm)
        self.g_hidden_units = g_hidden_units
        self.d_hidden_units = d_hidden_units
