"""Adversarial losses, per example.

Every function takes discriminator logits of any shape `(B, ...)` (patch discriminators
included) and returns a `(B,)` tensor: the mean over all non-batch axes. Averaging over
the *global* batch is the caller's job (`keras_aigc.distribute.global_mean`), so that the
same code is correct under any `tf.distribute` strategy.
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


def non_saturating_generator_loss(fake_logits):
    """-log D(G(z)) (Goodfellow et al. 2014, the "modified" generator loss)."""
    fake_logits = _float(fake_logits)
    return _per_example(tf.nn.softplus(-fake_logits))


def non_saturating_discriminator_loss(real_logits, fake_logits):
    """-log D(x) - log(1 - D(G(z))): binary cross-entropy on real=1, fake=0."""
    real_logits, fake_logits = _float(real_logits), _float(fake_logits)
    return _per_example(tf.nn.softplus(-real_logits)) + _per_example(tf.nn.softplus(fake_logits))
