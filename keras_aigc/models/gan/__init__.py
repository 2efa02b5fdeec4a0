from keras_aigc.models.gan.dcgan import DCGAN, build_dcgan_discriminator, build_dcgan_generator
from keras_aigc.models.gan.gan import GAN

__all__ = ["GAN", "DCGAN", "build_dcgan_generator", "build_dcgan_discriminator"]
