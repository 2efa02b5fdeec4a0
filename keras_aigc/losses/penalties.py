"""Gradient penalties on the discriminator, per example.

Both penalties take `critic`, a callable mapping images `(B, H, W, C)` to logits of any
shape `(B, ...)`, and return a `(B,)` tensor to add to the per-example discriminator loss.
The input gradient of example `i` is taken of the sum of its own logits, which is the
per-example gradient as long as the critic mixes no information across the batch (no
batch normalization; that is why WGAN-GP critics use none).
"""

import tensorflow as tf

PENALTIES = ("gradient_penalty", "one_sided_gradient_penalty", "r1")


def _input_gradient_sq_norm(critic, images):
    images = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = tf.cast(critic(images), tf.float32)
        total = tf.reduce_sum(logits)
    grads = tf.cast(tape.gradient(total, images), tf.float32)
    return tf.reduce_sum(tf.reshape(tf.square(grads), [tf.shape(grads)[0], -1]), axis=1)


def check_penalty(penalty, weight):
    """Validates a penalty name and weight; raises ValueError naming the argument."""
    if penalty is not None and (not isinstance(penalty, str) or penalty not in PENALTIES):
        raise ValueError(
            f"Unrecognized penalty={penalty!r}. Supported penalties are: "
            f"{[None, *PENALTIES]}."
        )
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ValueError(
            f"penalty_weight must be a non-negative number, got penalty_weight={weight!r}."
        )


def gradient_penalty(critic, real, fake, alpha, weight=10.0, one_sided=False):
    """WGAN-GP penalty `weight * (||grad_x f(x_hat)|| - 1)^2` on interpolates.

    `x_hat = alpha * real + (1 - alpha) * fake` with one `alpha` per example. The
    one-sided variant penalizes only norms above 1: `weight * max(0, ||grad|| - 1)^2`.

    Args:
        critic: callable. Images to logits.
        real: tensor `(B, H, W, C)`. Real images.
        fake: tensor `(B, H, W, C)`. Generated images (gradients to G are stopped).
        alpha: tensor `(B,)` or `(B, 1)`. Interpolation weights in [0, 1], drawn
            uniformly by the caller (so that the caller controls replica-exact seeding).
        weight: float. The penalty coefficient lambda. Defaults to `10.0`.
        one_sided: bool. Penalize only gradient norms above 1. Defaults to `False`.

    Returns:
        A `(B,)` float32 tensor.

    Example:

    ```python
    alpha = tf.random.uniform([batch])
    gp = keras_aigc.losses.gradient_penalty(critic, real, fake, alpha, weight=10.0)
    ```

    Reference:
        Gulrajani et al. Improved Training of Wasserstein GANs, 2017; Petzka et al.
        On the regularization of Wasserstein GANs, 2018 (one-sided).
    """
    real = tf.cast(real, tf.float32)
    fake = tf.stop_gradient(tf.cast(fake, tf.float32))
    rank = real.shape.rank
    alpha = tf.reshape(tf.cast(alpha, tf.float32), [-1] + [1] * (rank - 1))
    interpolates = alpha * real + (1.0 - alpha) * fake
    # The epsilon keeps the norm's gradient finite where the input gradient is zero.
    norm = tf.sqrt(_input_gradient_sq_norm(critic, interpolates) + 1e-12)
    excess = norm - 1.0
    if one_sided:
        excess = tf.nn.relu(excess)
    return float(weight) * tf.square(excess)


def r1_penalty(critic, real, weight=10.0):
    """R1 penalty `weight / 2 * ||grad_x D(x)||^2` on real images.

    Args:
        critic: callable. Images to logits.
        real: tensor `(B, H, W, C)`. Real images.
        weight: float. The coefficient gamma. Defaults to `10.0`.

    Returns:
        A `(B,)` float32 tensor.

    Example:

    ```python
    r1 = keras_aigc.losses.r1_penalty(discriminator, real_images, weight=10.0)
    ```

    Reference:
        Mescheder, Geiger, Nowozin. Which Training Methods for GANs do actually
        Converge?, 2018.
    """
    return 0.5 * float(weight) * _input_gradient_sq_norm(critic, real)
