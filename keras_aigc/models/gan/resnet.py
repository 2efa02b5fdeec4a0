"""ResNet GAN (SNGAN/BigGAN style): residual up/down blocks, projection discriminator.

The builders here are shared by `ResNetGAN` (unconditional) and `ConditionalResNetGAN`
(class-conditional batch norm in G, projection D).
"""

import keras

from keras_aigc.layers.conditional_batch_norm import ConditionalBatchNorm
from keras_aigc.layers.label_onehot import LabelOneHot
from keras_aigc.layers.spectral_norm import SpectralNormalization
from keras_aigc.models.gan.gan import GAN

# Channel widths per resolution (G: base 4x4 first; D: image resolution first).
RESNET_PRESETS = {
    # SNGAN's CIFAR-10 ResNet (Miyato et al. 2018, Table 4).
    "resnet32": {"image_shape": (32, 32, 3), "latent_dim": 128,
                 "g_channels": (256, 256, 256, 256), "d_channels": (128, 128, 128, 128)},
    # SNGAN/BigGAN 64x64 (ch = 64).
    "resnet64": {"image_shape": (64, 64, 3), "latent_dim": 128,
                 "g_channels": (512, 512, 256, 128, 64),
                 "d_channels": (64, 128, 256, 512, 512)},
    # BigGAN 128x128 widths at ch = 64 (the paper's ch = 96 is 2.25x the parameters).
    "resnet128": {"image_shape": (128, 128, 3), "latent_dim": 128,
                  "g_channels": (1024, 1024, 512, 256, 128, 64),
                  "d_channels": (64, 128, 256, 512, 1024, 1024)},
}


def resolve_preset(preset, image_shape, latent_dim, g_channels, d_channels):
    """Fills unset (None) architecture arguments from a named preset."""
    if preset is None:
        base = {"image_shape": (32, 32, 3), "latent_dim": 128, "g_channels": (64, 64, 64, 64),
                "d_channels": (64, 64, 64, 64)}
    elif preset not in RESNET_PRESETS:
        raise ValueError(f"Unrecognized architecture={preset!r}. Supported: "
                         f"{sorted(RESNET_PRESETS)}.")
    else:
        base = RESNET_PRESETS[preset]
    return (tuple(image_shape if image_shape is not None else base["image_shape"]),
            int(latent_dim if latent_dim is not None else base["latent_dim"]),
            tuple(g_channels if g_channels is not None else base["g_channels"]),
            tuple(d_channels if d_channels is not None else base["d_channels"]))


def check_resnet_args(image_shape, g_channels, d_channels):
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (H, W, C) positive integers, got {image_shape!r}.")
    for name, chans in (("g_channels", g_channels), ("d_channels", d_channels)):
        if len(chans) < 2 or any(isinstance(c, bool) or not isinstance(c, int) or c < 1
                                 for c in chans):
            raise ValueError(f"{name} must hold at least two positive integers, got "
                             f"{name}={tuple(chans)!r}.")
    h, w, _ = image_shape
    up = 2 ** (len(g_channels) - 1)
    if h % up or w % up:
        raise ValueError(f"image_shape={image_shape} does not fit g_channels={tuple(g_channels)}: "
                         f"{len(g_channels) - 1} up blocks need H and W divisible by {up}.")
    down = 2 ** (len(d_channels) - 1)
    if h % down or w % down:
        raise ValueError(f"image_shape={image_shape} does not fit d_channels={tuple(d_channels)}: "
                         f"{len(d_channels) - 1} down blocks need H and W divisible by {down}.")
    return image_shape


def _norm(x, labels, num_classes, synchronized, name):
    if labels is None:
        return keras.layers.BatchNormalization(synchronized=synchronized, name=name)(x)
    return ConditionalBatchNorm(num_classes, synchronized=synchronized, name=name)([x, labels])


def g_block(x, labels, channels, num_classes, synchronized, name):
    """Up-sampling residual block: BN-ReLU-Up-Conv3-BN-ReLU-Conv3 + Up-Conv1 shortcut."""
    h = _norm(x, labels, num_classes, synchronized, f"{name}_bn1")
    h = keras.layers.ReLU(name=f"{name}_relu1")(h)
    h = keras.layers.UpSampling2D(2, name=f"{name}_up")(h)
    # No biases: every output here is batch-normalized next (after the residual sum), so a
    # bias would get a zero gradient, and Adam turns that numerical noise into steps.
    h = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv1")(h)
    h = _norm(h, labels, num_classes, synchronized, f"{name}_bn2")
    h = keras.layers.ReLU(name=f"{name}_relu2")(h)
    h = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name=f"{name}_conv2")(h)
    s = keras.layers.UpSampling2D(2, name=f"{name}_sc_up")(x)
    s = keras.layers.Conv2D(channels, 1, use_bias=False, name=f"{name}_sc_conv")(s)
    return keras.layers.Add(name=f"{name}_add")([h, s])


def build_resnet_generator(image_shape, latent_dim, g_channels, num_classes=None,
                           sync_batchnorm=True, name="generator"):
    """`z [, labels] -> image` in [-1, 1]: dense to a base grid, one `g_block` per
    entry of `g_channels[1:]` (each doubles the resolution), BN-ReLU-Conv3-tanh.

    With `num_classes`, every batch norm is a `ConditionalBatchNorm` and the model takes
    an int32 `labels (B,)` input as well.
    """
    h, w, c = image_shape
    up = 2 ** (len(g_channels) - 1)
    z = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels") if num_classes else None
    x = keras.layers.Dense((h // up) * (w // up) * g_channels[0], use_bias=False,
                           name="project")(z)
    x = keras.layers.Reshape((h // up, w // up, g_channels[0]), name="reshape")(x)
    for i, ch in enumerate(g_channels[1:]):
        x = g_block(x, labels, ch, num_classes, sync_batchnorm, f"block{i}")
    x = _norm(x, labels, num_classes, sync_batchnorm, "out_bn")
    x = keras.layers.ReLU(name="out_relu")(x)
    x = keras.layers.Conv2D(c, 3, padding="same", name="to_image")(x)
    out = keras.layers.Activation("tanh", dtype="float32", name="image")(x)
    return keras.Model([z, labels] if num_classes else z, out, name=name)


def _sn(layer, power_iterations):
    return SpectralNormalization(layer, power_iterations=power_iterations,
                                              name=f"sn_{layer.name}")


def d_block(x, channels, downsample, first, power_iterations, name):
    """Down-sampling residual block (SN convs); `first` is the "optimized" input block
    without a leading ReLU. Shortcut: Conv1 then AvgPool (AvgPool then Conv1 if first)."""
    h = x if first else keras.layers.ReLU(name=f"{name}_relu1")(x)
    h = _sn(keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1"),
            power_iterations)(h)
    h = keras.layers.ReLU(name=f"{name}_relu2")(h)
    h = _sn(keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2"),
            power_iterations)(h)
    if downsample:
        h = keras.layers.AveragePooling2D(2, name=f"{name}_pool")(h)
    s = x
    if first and downsample:
        s = keras.layers.AveragePooling2D(2, name=f"{name}_sc_pool")(s)
    if first or downsample or int(x.shape[-1]) != channels:
        s = _sn(keras.layers.Conv2D(channels, 1, name=f"{name}_sc_conv"), power_iterations)(s)
    if downsample and not first:
        s = keras.layers.AveragePooling2D(2, name=f"{name}_sc_pool")(s)
    return keras.layers.Add(name=f"{name}_add")([h, s])


def build_resnet_discriminator(image_shape, d_channels, num_classes=None, power_iterations=1,
                               name="discriminator"):
    """`image [, labels] -> logit`: residual down blocks (all but the last halve the
    resolution), ReLU, global sum pooling, then `psi(h) [+ <embed(y), h>]` (projection).
    Every weight layer is spectrally normalized."""
    x_in = keras.Input(tuple(image_shape), name="image")
    labels = keras.Input((), dtype="int32", name="labels") if num_classes else None
    x = x_in
    last = len(d_channels) - 1
    for i, ch in enumerate(d_channels):
        x = d_block(x, ch, downsample=i < last, first=i == 0,
                    power_iterations=power_iterations, name=f"block{i}")
    x = keras.layers.ReLU(name="out_relu")(x)
    # Global sum pooling (SNGAN): the mean times the number of positions.
    area = int(x.shape[1]) * int(x.shape[2])
    h = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    h = keras.layers.Rescaling(float(area), name="sum_pool")(h)
    logit = _sn(keras.layers.Dense(1, name="psi"), power_iterations)(h)
    if num_classes:
        one_hot = LabelOneHot(num_classes, name="one_hot")(labels)
        embedded = _sn(keras.layers.Dense(int(d_channels[-1]), use_bias=False,
                                          name="projection"), power_iterations)(one_hot)
        projection = keras.layers.Dot(axes=1, name="inner_product")([h, embedded])
        logit = keras.layers.Add(name="logit")([logit, projection])
    out = keras.layers.Activation("linear", dtype="float32", name="logit_float32")(logit)
    return keras.Model([x_in, labels] if num_classes else x_in, out, name=name)


@keras.saving.register_keras_serializable(package="keras_aigc")
class ResNetGAN(GAN):
    """Unconditional ResNet GAN in the SNGAN/BigGAN style, with the hinge loss.

    The generator stacks up-sampling residual blocks with batch norm; the discriminator
    stacks down-sampling residual blocks whose every weight layer is spectrally
    normalized, followed by global sum pooling and a linear logit.

    Args:
        architecture: str or None. `"resnet32"`, `"resnet64"` or `"resnet128"` (RGB); fills
            every architecture argument left as `None`. Defaults to `None` (a small
            32x32 network).
        image_shape: tuple. `(H, W, C)`.
        latent_dim: int. Size of `z`.
        g_channels: tuple of int. Generator widths, the base 4x4 (or H/2^k) grid first;
            each further entry is one up block.
        d_channels: tuple of int. Discriminator widths per block; all blocks but the
            last halve the resolution.
        power_iterations: int. Spectral-norm power iterations. Defaults to `1`.
        sync_batchnorm: bool. Synchronized batch norm in G. Defaults to `True`.
        loss: str. Defaults to `"hinge"`.
        **kwargs: `d_steps`, `seed`, `ema_decay`, `diff_augment` and the other `GAN`
            arguments.

    `compile()` defaults to `Adam(2e-4, beta_1=0.0, beta_2=0.9)` (SNGAN's ResNet setting).

    Example:

    ```python
    gan = keras_aigc.models.ResNetGAN(architecture="resnet64", d_steps=2)
    gan.compile()
    gan.fit(keras_aigc.data.load("records:prepared/faces", batch_size=64), epochs=1)
    ```

    Reference:
        - [Miyato et al., Spectral Normalization for GANs, ICLR 2018](
          https://arxiv.org/abs/1802.05957)
        - [Brock, Donahue & Simonyan, Large Scale GAN Training (BigGAN), ICLR 2019](
          https://arxiv.org/abs/1809.11096)
    """

    # Measured (TF 2.21, LiteRT 2.3): the dynamic-batch file's image output reads
    # [-1, -1, W, C], which keras_aigc_runtime refuses against the manifest's shape.
    fixed_batch_formats = {
        "tflite": "with a dynamic batch the converted file's image output shape loses its "
                  "height ([-1, -1, W, C]), so keras_aigc_runtime refuses the file"}

    architecture_args = ("image_shape", "g_channels", "d_channels", "power_iterations",
                         "sync_batchnorm")

    def __init__(self, architecture=None, image_shape=None, latent_dim=None, g_channels=None,
                 d_channels=None, power_iterations=1, sync_batchnorm=True, loss="hinge",
                 **kwargs):
        image_shape, latent_dim, g_channels, d_channels = resolve_preset(
            architecture, image_shape, latent_dim, g_channels, d_channels)
        image_shape = check_resnet_args(image_shape, g_channels, d_channels)
        generator = build_resnet_generator(image_shape, latent_dim, g_channels,
                                           sync_batchnorm=sync_batchnorm)
        discriminator = build_resnet_discriminator(image_shape, d_channels,
                                                   power_iterations=power_iterations)
        super().__init__(generator=generator, discriminator=discriminator,
                         latent_dim=latent_dim, loss=loss, **kwargs)
        self.g_channels = tuple(int(c) for c in g_channels)
        self.d_channels = tuple(int(c) for c in d_channels)
        self.power_iterations = int(power_iterations)
        self.sync_batchnorm = bool(sync_batchnorm)

    def default_optimizer(self, which):
        del which
        return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.0, beta_2=0.9)
