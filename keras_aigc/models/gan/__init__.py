from keras_aigc.models.gan.conditional_gan import ConditionalGAN
from keras_aigc.models.gan.conditional_resnet_gan import ConditionalResNetGAN
from keras_aigc.models.gan.dcgan import DCGAN, build_dcgan_discriminator, build_dcgan_generator
from keras_aigc.models.gan.gan import GAN
from keras_aigc.models.gan.resnet import (
    RESNET_PRESETS,
    ResNetGAN,
    build_resnet_discriminator,
    build_resnet_generator,
)
from keras_aigc.models.gan.sngan import SNGAN
from keras_aigc.models.gan.wgan_gp import WGANGP

__all__ = ["GAN", "DCGAN", "build_dcgan_generator", "build_dcgan_discriminator"]
__all__ += ["WGANGP", "SNGAN", "ConditionalGAN"]
__all__ += ["ResNetGAN", "ConditionalResNetGAN", "RESNET_PRESETS", "build_resnet_generator",
            "build_resnet_discriminator"]
