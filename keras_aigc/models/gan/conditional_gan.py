"""Class-conditional GAN: label-embedding generator, projection discriminator."""

import keras
import numpy as np
import tensorflow as tf

from keras_aigc.layers.label_onehot import LabelOneHot
from keras_aigc.layers.spectral_norm import SpectralNormalization
from keras_aigc.models.gan.dcgan import (
    build_dcgan_generator,
    check_hidden_units,
    synchronize_batchnorm,
)
from keras_aigc.models.gan.gan import GAN
from keras_aigc.models.gan.wgan_gp import check_image_args


def build_conditional_generator(image_shape, latent_dim, num_classes, embedding_dim,
                                g_filters, kernel_size, sync_batchnorm, name="generator",
                                hidden_units=None):
    """`[z, labels] -> image`: the label embedding is concatenated to `z`.

    A functional model with an int32 `labels` input of shape `(B,)`, so it exports with
    two named inputs (`z`, `labels`).
    """
    z = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    emb = keras.layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
    h = keras.layers.Concatenate(name="z_and_label")([z, emb])
    trunk = build_dcgan_generator(image_shape, latent_dim + embedding_dim, g_filters,
                                  kernel_size, sync_batchnorm, name="trunk",
                                  hidden_units=hidden_units)
    return keras.Model([z, labels], trunk(h), name=name)


def build_projection_discriminator(image_shape, num_classes, d_filters, kernel_size,
                                   feature_dim, spectral_norm, name="discriminator",
                                   batchnorm=False, sync_batchnorm=True):
    """`[image, labels] -> logit = psi(phi(x)) + <embed(y), phi(x)>`.

    `phi` is a strided conv stack and a dense feature layer, `psi` a linear layer and
    `embed` a class embedding of the same width as the features (Miyato & Koyama 2018).
    With `batchnorm`, every conv after the first and the feature layer are followed by
    batch norm, as in the DCGAN discriminator (`build_dcgan_discriminator`).
    """
    def wrap(layer):
        if not spectral_norm:
            return layer
        return SpectralNormalization(layer, name=f"sn_{layer.name}")

    x_in = keras.Input(tuple(image_shape), name="image")
    labels = keras.Input((), dtype="int32", name="labels")
    x = x_in
    for i, filters in enumerate(d_filters):
        norm = batchnorm and i > 0
        x = wrap(keras.layers.Conv2D(filters, kernel_size, strides=2, padding="same",
                                     use_bias=not norm, name=f"down{i}"))(x)
        if norm:
            x = keras.layers.BatchNormalization(
                synchronized=synchronize_batchnorm(sync_batchnorm), name=f"down{i}_bn")(x)
        x = keras.layers.LeakyReLU(negative_slope=0.1, name=f"down{i}_act")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    h = wrap(keras.layers.Dense(feature_dim, use_bias=not batchnorm, name="features"))(x)
    if batchnorm:
        h = keras.layers.BatchNormalization(
            synchronized=synchronize_batchnorm(sync_batchnorm), name="features_bn")(h)
    h = keras.layers.LeakyReLU(negative_slope=0.1, name="features_act")(h)
    unconditional = wrap(keras.layers.Dense(1, name="psi"))(h)
    # The class embedding as a bias-free Dense on one-hot labels (the same map; kept from
    # when Keras' SpectralNormalization, which casts its output to its input's dtype, turned
    # an Embedding's output into integers, so that trained weights keep their layout).
    one_hot = LabelOneHot(num_classes, name="one_hot")(labels)
    embedded = wrap(keras.layers.Dense(feature_dim, use_bias=False, name="projection"))(one_hot)
    projection = keras.layers.Dot(axes=1, name="inner_product")([h, embedded])
    logit = keras.layers.Add(name="logit")([unconditional, projection])
    out = keras.layers.Activation("linear", dtype="float32", name="logit_float32")(logit)
    return keras.Model([x_in, labels], out, name=name)


@keras.saving.register_keras_serializable(package="keras_aigc")
class ConditionalGAN(GAN):
    """Class-conditional GAN with a projection discriminator.

    The generator concatenates a learned label embedding to the latent vector and runs
    the DCGAN generator; the discriminator is a projection discriminator, whose logit
    is an unconditional score plus the inner product of a class embedding with the
    image features. Training data are `(images, labels)` batches
    (`keras_aigc.data.load(..., labels=True)`); generated images during training use the
    labels of the real batch.

    Args:
        num_classes: int. Number of classes; labels are in `[0, num_classes)`.
        image_shape: tuple. `(H, W, C)` of the images. Defaults to `(28, 28, 1)`.
        latent_dim: int. Size of the latent vector. Defaults to `100`.
        embedding_dim: int. Width of the generator's label embedding. Defaults to `50`.
        g_filters: tuple of int. Generator channels (see `build_dcgan_generator`).
            Defaults to `(256, 128, 64)`.
        d_filters: tuple of int. Discriminator channels per stride-2 conv.
            Defaults to `(64, 128)`.
        kernel_size: int. Convolution kernel size. Defaults to `4`.
        feature_dim: int. Width of the discriminator features and class embedding.
            Defaults to `256`.
        spectral_norm: bool. Wrap every discriminator weight layer (the class
            embedding included) in `keras_aigc.layers.SpectralNormalization`.
            Defaults to `True`.
        sync_batchnorm: bool. Synchronized batch norm in the generator (and in the
            discriminator with `d_batchnorm`). Defaults to `True`.
        loss: str. Defaults to `"hinge"`.
        g_hidden_units: int or None. Width of a fully connected layer between the latent
            and label embedding and the generator's projection, as in the InfoGAN generator
            (see `build_dcgan_generator`). Defaults to None. (The discriminator's dense
            layer is `feature_dim`.)
        d_batchnorm: bool. Batch norm after every discriminator conv but the first and
            after the feature layer, as in `DCGAN(d_batchnorm=True)`; real and fake batches
            go through D separately, so each is normalised by its own statistics.
            Defaults to `False`.
        **kwargs: `d_steps`, `seed`, `ema_decay`, `diff_augment` and the other `GAN`
            arguments.

    Example:

    ```python
    gan = keras_aigc.models.ConditionalGAN(num_classes=10, image_shape=(28, 28, 1))
    gan.compile()
    gan.fit(keras_aigc.data.load("npz:mnist.npz", labels=True), epochs=1)
    sevens = gan.generate(16, labels=[7] * 16, seed=0)
    ```

    Reference:
        Mirza & Osindero. Conditional Generative Adversarial Nets, 2014.
        Miyato & Koyama. cGANs with Projection Discriminator, ICLR 2018.
    """

    conditional = True
    architecture_args = ("num_classes", "image_shape", "embedding_dim", "g_filters", "d_filters",
                         "kernel_size", "feature_dim", "spectral_norm", "sync_batchnorm",
                         "g_hidden_units", "d_batchnorm")

    def __init__(self, num_classes, image_shape=(28, 28, 1), latent_dim=100, embedding_dim=50,
                 g_filters=(256, 128, 64), d_filters=(64, 128), kernel_size=4, feature_dim=256,
                 spectral_norm=True, sync_batchnorm=True, loss="hinge", g_hidden_units=None,
                 d_batchnorm=False, **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got num_classes={num_classes!r}.")
        for name, value in (("embedding_dim", embedding_dim), ("feature_dim", feature_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {name}={value!r}.")
        image_shape = check_image_args(image_shape, g_filters, d_filters)
        check_hidden_units(g_hidden_units=g_hidden_units)
        if "d_hidden_units" in kwargs:
            raise ValueError(
                "ConditionalGAN takes no d_hidden_units: the projection discriminator's dense "
                f"layer is `feature_dim`. Set feature_dim={kwargs['d_hidden_units']!r} instead.")
        if not isinstance(d_batchnorm, bool):
            raise ValueError(f"d_batchnorm must be true or false, got {d_batchnorm!r}.")
        num_classes = int(num_classes)
        generator = build_conditional_generator(image_shape, latent_dim, num_classes,
                                                embedding_dim, g_filters, kernel_size,
                                                sync_batchnorm, hidden_units=g_hidden_units)
        discriminator = build_projection_discriminator(image_shape, num_classes, d_filters,
                                                       kernel_size, feature_dim,
                                                       spectral_norm, batchnorm=d_batchnorm,
                                                       sync_batchnorm=sync_batchnorm)
        super().__init__(generator=generator, discriminator=discriminator,
                         latent_dim=latent_dim, loss=loss, **kwargs)
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.g_filters = tuple(int(f) for f in g_filters)
        self.d_filters = tuple(int(f) for f in d_filters)
        self.kernel_size = int(kernel_size)
        self.feature_dim = feature_dim
        self.spectral_norm = bool(spectral_norm)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.g_hidden_units = g_hidden_units
        self.d_batchnorm = bool(d_batchnorm)

    # --------------------------------------------------------------- conditioning
    def generator_inputs(self, z, labels):
        return [z, tf.cast(labels, tf.int32)]

    def discriminator_inputs(self, images, labels):
        return [images, tf.cast(labels, tf.int32)]
