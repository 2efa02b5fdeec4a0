"""Convolutional VAE with ResNet encoder and decoder (the VAE's network-builder hooks)."""

import keras

from keras_aigc.models.vae import networks
from keras_aigc.models.vae.posterior_params import PosteriorParams
from keras_aigc.models.vae.vae import VAE, _positive_int

RESNET_VAE_PRESETS = {
    "resnet32": {"image_shape": (32, 32, 3), "latent_dim": 128, "channels": (64, 128, 256)},
    "resnet64": {"image_shape": (64, 64, 3), "latent_dim": 128,
                 "channels": (64, 128, 256, 256)},
    "resnet128": {"image_shape": (128, 128, 3), "latent_dim": 256,
                  "channels": (64, 128, 256, 256, 512)},
}


def _res_block(x, channels, activation, name):
    """Pre-activation residual block at constant resolution (GroupNorm-free, as the
    VAE trains with small per-replica batches)."""
    h = keras.layers.Activation(activation, name=f"{name}_act1")(x)
    h = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(h)
    h = keras.layers.Activation(activation, name=f"{name}_act2")(h)
    h = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(h)
    s = x
    if int(x.shape[-1]) != channels:
        s = keras.layers.Conv2D(channels, 1, name=f"{name}_sc")(x)
    return keras.layers.Add(name=f"{name}_add")([h, s])


@keras.saving.register_keras_serializable(package="keras_aigc")
class ResNetVAE(VAE):
    """A VAE whose encoder and decoder are convolutional residual networks.

    The encoder runs a 3x3 stem, then per entry of `channels` a residual block and a
    stride-2 convolution (halving the resolution), flattens and outputs the posterior
    parameters; the decoder mirrors it with nearest up-sampling, and outputs the
    likelihood parameters per pixel. Posterior, prior, likelihood (`"bernoulli"`,
    `"gaussian"`, `"logistic"`), objective (ELBO/IWAE) and evaluation (`log_likelihood`,
    `bits_per_dim`) are those of `VAE`, which this class only gives other networks.

    Args:
        architecture: str or None. `"resnet32"`, `"resnet64"` or `"resnet128"` (RGB); fills
            `image_shape`, `latent_dim` and `channels` when left as `None`.
        channels: tuple of int. Widths per resolution, full resolution first; each entry
            halves the resolution in the encoder (doubles it in the decoder).
        activation: str. Defaults to `"swish"`.
        **kwargs: every other `VAE` argument (`likelihood`, `posterior`, `prior`,
            `beta`, `objective`, `iwae_samples`, `value_range`, `seed`, ...).

    Example:

    ```python
    vae = keras_aigc.models.ResNetVAE(architecture="resnet64", likelihood="logistic")
    vae.compile()
    vae.fit(keras_aigc.data.load("records:prepared/faces", scaling="sigmoid"), epochs=1)
    ```

    Reference:
        - [Kingma & Welling, Auto-Encoding Variational Bayes, 2014](
          https://arxiv.org/abs/1312.6114)
        - [He et al., Identity Mappings in Deep Residual Networks, 2016](
          https://arxiv.org/abs/1603.05027)
    """

    # Measured (TF 2.21): with a dynamic batch the converter leaves the decoder's
    # up-sampled convolutions as tf.Conv2D with unknown spatial dims; fixed batches convert.
    fixed_batch_formats = {
        "tflite": "with a dynamic batch its decoder's UpSampling2D + Conv2D converts to a "
                  "Select-TF (Flex) Conv2D, which the builtin-op LiteRT interpreter refuses"}

    def __init__(self, architecture=None, image_shape=None, latent_dim=None, channels=None,
                 activation="swish", hidden_units=(), **kwargs):
        if architecture is not None and architecture not in RESNET_VAE_PRESETS:
            raise ValueError(f"Unrecognized architecture={architecture!r}. Supported: "
                             f"{sorted(RESNET_VAE_PRESETS)}.")
        base = RESNET_VAE_PRESETS.get(architecture) or {
            "image_shape": (32, 32, 3), "latent_dim": 64, "channels": (32, 64, 128)}
        image_shape = tuple(image_shape if image_shape is not None else base["image_shape"])
        channels = tuple(channels if channels is not None else base["channels"])
        if not channels:
            raise ValueError("channels must hold at least one positive integer, got ().")
        for c in channels:
            _positive_int("channels entries", c)
        factor = 2 ** len(channels)
        if len(image_shape) == 3 and (image_shape[0] % factor or image_shape[1] % factor):
            raise ValueError(f"image_shape={image_shape} does not fit channels={channels}: "
                             f"{len(channels)} stride-2 stages need H and W divisible by "
                             f"{factor}.")
        if tuple(hidden_units):
            raise ValueError("ResNetVAE has no dense hidden layers: leave hidden_units=() "
                             f"(got {tuple(hidden_units)!r}); set channels instead.")
        self.channels = tuple(int(c) for c in channels)
        super().__init__(image_shape=image_shape,
                         latent_dim=latent_dim if latent_dim is not None else base["latent_dim"],
                         hidden_units=(), activation=activation, **kwargs)

    # ------------------------------------------------------------------ networks
    def build_encoder(self):
        image = keras.Input(self.image_shape, name="image")
        labels, onehot = networks.label_input(self.num_classes)
        h = keras.layers.Conv2D(self.channels[0], 3, padding="same", name="stem")(image)
        for i, ch in enumerate(self.channels):
            h = _res_block(h, ch, self.activation, f"enc{i}")
            h = keras.layers.Conv2D(ch, 4, strides=2, padding="same", name=f"down{i}")(h)
        h = keras.layers.Activation(self.activation, name="enc_act")(h)
        h = keras.layers.Flatten(name="flatten")(h)
        if onehot is not None:
            h = keras.layers.Concatenate(name="concat_label")([h, onehot])
        params = PosteriorParams(self.latent_dim, self.posterior, name="posterior_params")
        raw = keras.layers.Dense(params.num_params, dtype="float32", name="posterior_raw")(h)
        loc, scale = params(raw)
        return keras.Model([image, *labels] if labels else image, [loc, scale], name="encoder")

    def build_decoder(self):
        z = keras.Input((self.latent_dim,), name="z")
        labels, onehot = networks.label_input(self.num_classes)
        h = z
        if onehot is not None:
            h = keras.layers.Concatenate(name="concat_label")([h, onehot])
        height, width, channels = self.image_shape
        factor = 2 ** len(self.channels)
        bh, bw, top = height // factor, width // factor, self.channels[-1]
        h = keras.layers.Dense(bh * bw * top, name="project")(h)
        h = keras.layers.Reshape((bh, bw, top), name="reshape")(h)
        for i, ch in enumerate(reversed(self.channels)):
            h = keras.layers.UpSampling2D(2, name=f"up{i}")(h)
            h = keras.layers.Conv2D(ch, 3, padding="same", name=f"up{i}_conv")(h)
            h = _res_block(h, ch, self.activation, f"dec{i}")
        h = keras.layers.Activation(self.activation, name="dec_act")(h)
        params = keras.layers.Conv2D(channels * self.likelihood_params, 3, padding="same",
                                     dtype="float32", name="params")(h)
        return keras.Model([z, *labels] if labels else z, params, name="decoder")

    def get_config(self):
        config = super().get_config()
        config["channels"] = list(self.channels)
        config.pop("hidden_units", None)
        return config
