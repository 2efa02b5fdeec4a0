"""Adversarial losses, per example.

Every function takes discriminator logits of any shape `(B, ...)` (patch discriminators
included) and returns a `(B,)` tensor: the mean over all non-batch axes. Averaging over
the *global* batch is the caller's job (`keras_aigc.distribute.global_mean`), so that the
same code is correct under any `tf.distribute` strategy.

Families (generator loss / discriminator loss, with `D = sigmoid(logits)` where the
family is probabilistic):

| family           | generator                 | discriminator                              |
|------------------|---------------------------|--------------------------------------------|
| `minimax`        | `log(1 - D(G(z)))`        | `-log D(x) - log(1 - D(G(z)))`             |
| `non_saturating` | `-log D(G(z))`            | `-log D(x) - log(1 - D(G(z)))`             |
| `least_squares`  | `(f(G(z)) - 1)^2 / 2`     | `(f(x) - 1)^2 / 2 + f(G(z))^2 / 2`         |
| `wasserstein`    | `-f(G(z))`                | `f(G(z)) - f(x)`                           |
| `hinge`          | `-f(G(z))`                | `relu(1 - f(x)) + relu(1 + f(G(z)))`       |

Reference:
    Goodfellow et al. 2014 (minimax, non-saturating); Mao et al. 2017 (least squares);
    Arjovsky et al. 2017 (Wasserstein); Lim & Ye 2017, Miyato et al. 2018 (hinge).
"""

import tensorflow as tf


def _per_example(values):
    values = tf.convert_to_tensor(values)
    if values.shape.rank is not None and values.shape.rank <= 1:
        return tf.reshape(values, [-1])
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def _float(logits):
    # Mixed precision: losses are computed in float32 whatever the logits' dtype.
    return tf.cast(logits, tf.float32)


def minimax_generator_loss(fake_logits):
    """`log(1 - D(G(z)))`, the generator side of the original minimax game.

    It saturates when D rejects samples confidently; prefer `non_saturating` in practice.
    """
    return _per_example(-tf.nn.softplus(_float(fake_logits)))


def minimax_discriminator_loss(real_logits, fake_logits):
    """`-log D(x) - log(1 - D(G(z)))`: binary cross-entropy on real=1, fake=0."""
    real_logits, fake_logits = _float(real_logits), _float(fake_logits)
    return _per_example(tf.nn.softplus(-real_logits)) + _per_example(tf.nn.softplus(fake_logits))


def non_saturating_generator_loss(fake_logits):
    """-log D(G(z)) (Goodfellow et al. 2014, the "modified" generator loss)."""
    fake_logits = _float(fake_logits)
    return _per_example(tf.nn.softplus(-fake_logits))


def non_saturating_discriminator_loss(real_logits, fake_logits):
    """-log D(x) - log(1 - D(G(z))): binary cross-entropy on real=1, fake=0."""
    return minimax_discriminator_loss(real_logits, fake_logits)


def least_squares_generator_loss(fake_logits):
    """`(f(G(z)) - 1)^2 / 2` (LSGAN with labels a=0, b=c=1)."""
    return _per_example(0.5 * tf.square(_float(fake_logits) - 1.0))


def least_squares_discriminator_loss(real_logits, fake_logits):
    """`(f(x) - 1)^2 / 2 + f(G(z))^2 / 2` (Mao et al. 2017)."""
    real_logits, fake_logits = _float(real_logits), _float(fake_logits)
    return (_per_example(0.5 * tf.square(real_logits - 1.0))
            + _per_example(0.5 * tf.square(fake_logits)))


def wasserstein_generator_loss(fake_logits):
    """`-f(G(z))`: the critic's score of generated images, negated."""
    return _per_example(-_float(fake_logits))


def wasserstein_discriminator_loss(real_logits, fake_logits):
    """`f(G(z)) - f(x)`: minus the critic's Wasserstein-1 estimate.

    Needs a Lipschitz constraint on the critic, e.g. `keras_aigc.losses.gradient_penalty`.
    """
    return _per_example(_float(fake_logits)) - _per_example(_float(real_logits))


def hinge_generator_loss(fake_logits):
    """`-f(G(z))`, the generator side of the hinge loss."""
    return _per_example(-_float(fake_logits))


def hinge_discriminator_loss(real_logits, fake_logits):
    """`relu(1 - f(x)) + relu(1 + f(G(z)))` (Lim & Ye 2017; Miyato et al. 2018)."""
    real_logits, fake_logits = _float(real_logits), _float(fake_logits)
    return (_per_example(tf.nn.relu(1.0 - real_logits))
            + _per_example(tf.nn.relu(1.0 + fake_logits)))
