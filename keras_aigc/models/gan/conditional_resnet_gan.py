"""Class-conditional ResNet GAN: conditional batch norm in G, projection discriminator."""

import keras
import numpy as np

from keras_aigc.models.gan.conditional_gan import ConditionalGAN
from keras_aigc.models.gan.gan import GAN
from keras_aigc.models.gan.resnet import (
    ResNetGAN,
    build_resnet_discriminator,
    build_resnet_generator,
    check_resnet_args,
    resolve_preset,
)


@keras.saving.register_keras_serializable(package="keras_aigc")
class ConditionalResNetGAN(ConditionalGAN):
    """Class-conditional ResNet GAN (SNGAN-projection / BigGAN style).

    Every batch norm of the generator is a `ConditionalBatchNorm` (per-class scale and
    shift); the discriminator is the spectrally normalized residual discriminator of
    `ResNetGAN` with a projection term `<embed(y), h>` added to its logit. Training data
    are `(images, labels)`; `generate(n, labels=...)` draws images of given classes.

    Args:
        num_classes: int. Number of classes (>= 2).
        architecture: str or None. `"resnet32"`, `"resnet64"` or `"resnet128"`; fills every
            architecture argument left as `None`.
        image_shape, latent_dim, g_channels, d_channels, power_iterations,
        sync_batchnorm, loss: as in `ResNetGAN`.
        **kwargs: `d_steps`, `seed`, `ema_decay`, `diff_augment` and the other `GAN`
            arguments.

    Example:

    ```python
    gan = keras_aigc.models.ConditionalResNetGAN(num_classes=10, architecture="resnet32")
    gan.compile()
    gan.fit(keras_aigc.data.load("records:prepared/cifar", labels=True), epochs=1)
    ```

    Reference:
        - [Miyato & Koyama, cGANs with Projection Discriminator, ICLR 2018](
          https://arxiv.org/abs/1802.05637)
    """

    fixed_batch_formats = ResNetGAN.fixed_batch_formats  # the same generator blocks

    architecture_args = ("num_classes", "image_shape", "g_channels", "d_channels",
                         "power_iterations", "sync_batchnorm")

    def __init__(self, num_classes, architecture=None, image_shape=None, latent_dim=None,
                 g_channels=None, d_channels=None, power_iterations=1, sync_batchnorm=True,
                 loss="hinge", **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
                or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got num_classes={num_classes!r}.")
        num_classes = int(num_classes)
        image_shape, latent_dim, g_channels, d_channels = resolve_preset(
            architecture, image_shape, latent_dim, g_channels, d_channels)
        image_shape = check_resnet_args(image_shape, g_channels, d_channels)
        generator = build_resnet_generator(image_shape, latent_dim, g_channels, num_classes,
                                           sync_batchnorm)
        discriminator = build_resnet_discriminator(image_shape, d_channels, num_classes,
                                                   power_iterations)
        # ConditionalGAN.__init__ builds DCGAN networks: go straight to GAN's.
        GAN.__init__(self, generator=generator, discriminator=discriminator,
                     latent_dim=latent_dim, loss=loss, **kwargs)
        self.num_classes = num_classes
        self.g_channels = tuple(int(c) for c in g_channels)
        self.d_channels = tuple(int(c) for c in d_channels)
        self.power_iterations = int(power_iterations)
        self.sync_batchnorm = bool(sync_batchnorm)

    def generator_input_shape(self):
        return [(None, self.latent_dim), (None,)]

    def default_optimizer(self, which):
        del which
        return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.0, beta_2=0.9)
