"""Replica-aware helpers used inside `train_step` under any `tf.distribute` strategy."""

import tensorflow as tf


def replica_info():
    """Returns `(replica_id, num_replicas)` of the current replica (0, 1 outside one)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context
        return 0, tf.distribute.get_strategy().num_replicas_in_sync
    return ctx.replica_id_in_sync_group, ctx.num_replicas_in_sync


def global_mean(per_example):
    """Mean over the *global* batch of a per-example `(B,)` tensor.

    Each replica divides its local sum by `local_batch * num_replicas`; the optimizer then
    sums gradients across replicas, which gives exactly the global-batch mean gradient.
    A plain `reduce_mean` would be `num_replicas` times too large.
    """
    per_example = tf.cast(per_example, tf.float32)
    return tf.nn.compute_average_loss(per_example)


def replica_normal(seed, counter, local_batch, dim, dtype=tf.float32):
    """Standard-normal latents for this replica's slice of the global batch.

    Draws `(local_batch * num_replicas, dim)` from a stateless generator keyed on
    `(seed, counter)` and keeps this replica's rows. Replicas therefore get different
    latents, and the global batch of latents is the same whatever the number of replicas:
    a 2-replica step sees exactly the latents of the equivalent 1-replica step.
    """
    rid, n = replica_info()
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(counter, tf.int64)])
    z = tf.random.stateless_normal(
        tf.stack([local_batch * n, dim]), seed=key, dtype=tf.float32
    )
    start = tf.cast(rid, tf.int32) * local_batch
    return tf.cast(z[start:start + local_batch], dtype)
