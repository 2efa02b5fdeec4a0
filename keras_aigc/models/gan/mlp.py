"""Fully connected generator and discriminator: the MNIST GAN of introductory courses."""

import math

import keras

# Architectures named by `GAN.from_preset`. Only the networks live here; the GAN arguments
# (loss, optimizers) are the base class defaults the case study asks for: non-saturating BCE
# on logits and Adam(2e-4, beta_1=0.5) for both networks.
MLP_PRESETS = {
    # Goodfellow et al.'s MNIST GAN as courses teach it: G 100 -> 256 -> 512 -> 784 (ReLU,
    # tanh output reshaped to 28x28); D 784 -> 256 -> 128 -> 1 logit (LeakyReLU 0.2).
    "mlp_mnist": {
        "image_shape": (28, 28, 1),
        "latent_dim": 100,
        "g_units": (256, 512),
        "d_units": (256, 128),
    },
}


def build_mlp_generator(image_shape, latent_dim, units, name="generator"):
    """Dense(ReLU) stack -> Dense(H*W*C, tanh) -> Reshape(image_shape).

    The output is in the tanh range [-1, 1]: train on data scaled to that range
    (`data.scaling: tanh`).
    """
    image_shape = tuple(int(d) for d in image_shape)
    z = keras.Input((latent_dim,), name="z")
    x = z
    for i, n in enumerate(units):
        x = keras.layers.Dense(int(n), activation="relu", name=f"dense{i}")(x)
    x = keras.layers.Dense(math.prod(image_shape), name="to_pixels")(x)
    x = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)
    out = keras.layers.Reshape(image_shape, name="image")(x)
    return keras.Model(z, out, name=name)


def build_mlp_discriminator(image_shape, units, negative_slope=0.2, name="discriminator"):
    """Flatten -> Dense(LeakyReLU) stack -> Dense(1) with no activation: a logit.

    The logit goes to a loss computed from logits (`non_saturating`, a sigmoid cross-entropy
    on logits), not to a sigmoid followed by a probability loss, which loses precision
    where D is confident.
    """
    x_in = keras.Input(tuple(int(d) for d in image_shape), name="image")
    x = keras.layers.Flatten(name="flatten")(x_in)
    for i, n in enumerate(units):
        x = keras.layers.Dense(int(n), name=f"dense{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope=negative_slope, name=f"dense{i}_act")(x)
    out = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(x_in, out, name=name)
