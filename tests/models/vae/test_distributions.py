import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_aigc.models.vae import distributions as dists

tfd = tfp.distributions


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_analytic_and_monte_carlo_kl_agree_within_sampling_error(posterior):
    rng = np.random.default_rng(0)
    batch, d, n = 5, 3, 20000
    loc = tf.constant(rng.normal(size=(batch, d)), tf.float32)
    if posterior == "diagonal":
        scale = tf.constant(rng.uniform(0.3, 1.5, size=(batch, d)), tf.float32)
    else:
        a = rng.normal(size=(batch, d, d)) * 0.4
        scale = tf.constant(np.tril(a, -1) + np.eye(d) * rng.uniform(0.4, 1.2, (batch, 1, d)),
                            tf.float32)
    q = dists.make_posterior(posterior, loc, scale)
    prior = dists.make_prior("normal", d)
    analytic, is_analytic = dists.kl_divergence(q, prior)
    assert is_analytic
    eps = tf.random.stateless_normal((n, batch, d), seed=[1, 2])
    z = dists.reparameterize(posterior, loc, scale, eps)
    log_ratio = (q.log_prob(z) - prior.log_prob(z)).numpy()
    mc, stderr = log_ratio.mean(0), log_ratio.std(0) / np.sqrt(n)
    assert np.all(np.abs(mc - analytic.numpy()) < 4 * stderr), (mc, analytic, stderr)
    # The sampling error itself is small, so the comparison has teeth.
    assert np.all(stderr < 0.05)


def test_mixture_prior_falls_back_to_monte_carlo_kl():
    d = 2
    q = dists.make_posterior("diagonal", tf.zeros((4, d)), tf.ones((4, d)))
    prior = dists.make_prior("mixture", d, (tf.zeros(3), tf.zeros((3, d)),
                                            tf.fill((3, d), float(np.log(np.e - 1)))))
    # Three identical N(0, I) components: the mixture is N(0, I) and the KL is 0.
    z = tf.random.stateless_normal((100, 4, d), seed=[0, 1])
    kl, is_analytic = dists.kl_divergence(q, prior, z)
    assert not is_analytic
    np.testing.assert_allclose(kl.numpy(), 0.0, atol=1e-4)
    with pytest.raises(ValueError, match="pass samples z"):
        dists.kl_divergence(q, prior)


def test_bernoulli_log_prob_known_value():
    x = tf.constant(np.random.default_rng(0).integers(0, 2, (3, 4, 4, 1)), tf.float32)
    lp = dists.likelihood_log_prob("bernoulli", tf.zeros((3, 4, 4, 1)), x, 1)
    np.testing.assert_allclose(lp.numpy(), -16 * np.log(2), rtol=1e-6)


def test_gaussian_log_prob_known_value():
    x = tf.fill((2, 2, 2, 1), 1.0)
    lp = dists.likelihood_log_prob("gaussian", tf.zeros((2, 2, 2, 1)), x, 1,
                                   gaussian_scale=2.0)
    expected = 4 * (-0.5 * np.log(2 * np.pi) - np.log(2.0) - 0.5 * 0.25)
    np.testing.assert_allclose(lp.numpy(), expected, rtol=1e-6)


def _logistic_cdf(v, mu, s):
    return 1.0 / (1.0 + np.exp(-(v - mu) / s))


def test_discretized_logistic_matches_the_formula_and_normalizes():
    mu, s = 0.3, 0.05
    levels = np.arange(256)
    x = (levels / 255.0).reshape(256, 1, 1, 1).astype(np.float32)
    params = np.zeros((256, 1, 1, 2), np.float32)
    params[..., 0] = mu
    params[..., 1] = np.log(np.expm1(s - dists.MIN_LIKELIHOOD_SCALE))  # softplus^-1
    lp = dists.likelihood_log_prob("logistic", params, x, 1).numpy()
    # Bins of width 1/255 centred on k/255, open-ended at both edges.
    upper = np.where(levels == 255, 1.0, _logistic_cdf((levels + 0.5) / 255, mu, s))
    lower = np.where(levels == 0, 0.0, _logistic_cdf((levels - 0.5) / 255, mu, s))
    expected = np.log(upper - lower)
    mask = expected > -30  # far tails underflow in float64 reference
    np.testing.assert_allclose(lp[mask], expected[mask], atol=2e-4)
    np.testing.assert_allclose(np.exp(lp).sum(), 1.0, atol=1e-4)


def test_likelihood_mean():
    params = tf.constant([[[[0.0, 3.0]], [[1.5, -2.0]]]])  # (1, 2, 1, 2)
    np.testing.assert_allclose(dists.likelihood_mean("bernoulli", params, 1).numpy().ravel(),
                               [0.5, 1 / (1 + np.exp(-1.5))], rtol=1e-6)
    np.testing.assert_allclose(dists.likelihood_mean("logistic", params, 1).numpy().ravel(),
                               [0.0, 1.0])
    np.testing.assert_allclose(dists.likelihood_mean("gaussian", params, 1).numpy().ravel(),
                               [0.0, 1.5])
