"""Closed forms of the penalties on a linear critic f(x) = w . x (input gradient = w)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_aigc import losses
from keras_aigc.losses import penalties

SHAPE = (4, 3, 2)  # image shape (H, W, C); w has the same shape


def linear_critic(w):
    w = tf.constant(w, tf.float32)

    def critic(images):
        return tf.reduce_sum(images * w, axis=[1, 2, 3])[:, None]

    return critic


def scaled_w(norm, seed=0):
    w = np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float64)
    return (w * norm / np.linalg.norm(w)).astype(np.float32)


def images(seed, n=5):
    return np.random.default_rng(seed).standard_normal((n, *SHAPE)).astype(np.float32)


@pytest.mark.parametrize("norm", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("weight", [10.0, 0.5])
def test_gradient_penalty_of_linear_critic(norm, weight):
    w = scaled_w(norm)
    alpha = np.random.default_rng(1).uniform(size=5).astype(np.float32)
    gp = losses.gradient_penalty(linear_critic(w), images(2), images(3), alpha, weight=weight)
    w_norm = float(np.linalg.norm(w.astype(np.float64)))
    np.testing.assert_allclose(gp.numpy(), np.full(5, weight * (w_norm - 1.0) ** 2),
                               rtol=1e-4, atol=1e-5)
    assert gp.shape == (5,) and gp.dtype == tf.float32


@pytest.mark.parametrize("norm", [0.3, 2.5])
def test_one_sided_gradient_penalty_only_penalizes_norms_above_one(norm):
    w = scaled_w(norm, seed=4)
    alpha = np.full(5, 0.5, np.float32)
    gp = losses.gradient_penalty(linear_critic(w), images(2), images(3), alpha, weight=10.0,
                                 one_sided=True)
    w_norm = float(np.linalg.norm(w.astype(np.float64)))
    np.testing.assert_allclose(gp.numpy(), np.full(5, 10.0 * max(0.0, w_norm - 1.0) ** 2),
                               rtol=1e-4, atol=1e-5)


def test_gradient_penalty_is_taken_at_the_interpolates():
    # f(x) = 0.5 * ||x||^2 has gradient x, so the penalty sees ||x_hat||.
    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    real, fake = images(5), images(6)
    alpha = np.random.default_rng(7).uniform(size=5).astype(np.float32)
    x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
    norms = np.linalg.norm(x_hat.reshape(5, -1).astype(np.float64), axis=1)
    gp = losses.gradient_penalty(critic, real, fake, alpha, weight=2.0)
    np.testing.assert_allclose(gp.numpy(), 2.0 * (norms - 1.0) ** 2, rtol=1e-4)


@pytest.mark.parametrize("norm", [0.3, 2.5])
@pytest.mark.parametrize("gamma", [10.0, 0.1])
def test_r1_penalty_of_linear_critic(norm, gamma):
    w = scaled_w(norm, seed=8)
    r1 = losses.r1_penalty(linear_critic(w), images(9), weight=gamma)
    w_sq = float(np.sum(w.astype(np.float64) ** 2))
    np.testing.assert_allclose(r1.numpy(), np.full(5, gamma / 2 * w_sq), rtol=1e-5)


def test_penalties_have_gradients_for_the_critic_weights():
    w = tf.Variable(scaled_w(2.0))

    def critic(x):
        return tf.reduce_sum(x * w, axis=[1, 2, 3])

    alpha = np.full(5, 0.3, np.float32)
    with tf.GradientTape() as tape:
        gp = tf.reduce_mean(losses.gradient_penalty(critic, images(1), images(2), alpha))
    grad = tape.gradient(gp, w)
    # d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    expected = 2 * 10.0 * (2.0 - 1.0) * w.numpy() / 2.0
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("penalty", ["gp", "R1", 3])
def test_unknown_penalty_name(penalty):
    with pytest.raises(ValueError, match=r"penalty=.*Supported penalties"):
        penalties.check_penalty(penalty, 1.0)


@pytest.mark.parametrize("weight", [-1.0, -1e-9, float("nan"), "10", True])
def test_bad_penalty_weight(weight):
    with pytest.raises(ValueError, match=r"penalty_weight must be a non-negative number, "
                                         r"got penalty_weight="):
        penalties.check_penalty("r1", weight)
