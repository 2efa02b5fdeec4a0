"""Inverse autoregressive flow posteriors: exact triangular Jacobians, an exact density
(checked against probabilistic PCA's closed-form marginal), identity at initialization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_aigc.models import VAE, ConvVAE
from keras_aigc.models.vae import distributions as dists
from keras_aigc.models.vae.flows import IAFStep, made_masks
from tests.models.vae import ppca


def _randomize(layer, scale=0.5, seed=0):
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(scale * rng.standard_normal(w.shape).astype(np.float32))


def _step(d=5, hidden=(16, 12), reverse=False, seed=0):
    step = IAFStep(d, hidden, reverse=reverse)
    step.build(((None, d), (None, 2 * d)))
    _randomize(step, seed=seed)
    return step


@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("reverse", [False, True])
def test_made_masks_connect_each_output_to_exactly_the_earlier_inputs(d, reverse):
    masks = made_masks(d, (7, 4), reverse=reverse)
    paths = masks[0]
    for m in masks[1:]:
        paths = paths @ m
    order = np.arange(d)[::-1] if reverse else np.arange(d)  # position of each variable
    earlier = order[:, None] < order[None, :]  # [input j, output i]: j comes before i
    np.testing.assert_array_equal(paths > 0, earlier)


@pytest.mark.parametrize("reverse", [False, True])
def test_step_jacobian_is_triangular_with_the_log_det_it_reports(reverse):
    step = _step(reverse=reverse)
    rng = np.random.default_rng(1)
    z = tf.constant(rng.standard_normal((4, 5)).astype(np.float32))
    context = tf.constant(rng.standard_normal((4, 10)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(z)
        out, log_det = step(z, context)
    jac = tape.batch_jacobian(out, z).numpy()  # [b, output i, input j]
    m, r = step.shift_and_raw_scale(z, context)
    sigma = 2.0 / (1.0 + np.exp(-r.numpy()))
    for b in range(4):
        later = np.triu(np.ones((5, 5)), 1) if not reverse else np.tril(np.ones((5, 5)), -1)
        assert np.all(jac[b][later > 0] == 0.0)
        np.testing.assert_allclose(np.diag(jac[b]), sigma[b], rtol=1e-5)
        assert np.abs(jac[b][later == 0]).max() > 0.01  # the step is not trivial
        _, logdet = np.linalg.slogdet(jac[b].astype(np.float64))
        np.testing.assert_allclose(log_det.numpy()[b], logdet, atol=1e-4)


def test_step_broadcasts_context_over_importance_samples_and_inverts():
    step = _step()
    rng = np.random.default_rng(2)
    z = rng.standard_normal((3, 4, 5)).astype(np.float32)  # (k, B, d)
    context = rng.standard_normal((4, 10)).astype(np.float32)
    out, log_det = step(z, context)
    assert out.shape == (3, 4, 5) and log_det.shape == (3, 4)
    for s in range(3):  # each sample equals the step on that sample alone
        out_s, log_det_s = step(z[s], context)
        np.testing.assert_allclose(out[s], out_s, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(log_det[s], log_det_s, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(step.inverse(out, context), z, atol=1e-4)


def test_a_new_step_is_the_identity():
    step = IAFStep(4, (8,))
    step.build(((None, 4), (None, 8)))
    z = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    out, log_det = step(z, np.ones((6, 8), np.float32))
    np.testing.assert_allclose(out, z, atol=1e-6)
    np.testing.assert_allclose(log_det, 0.0, atol=1e-6)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_untrained_flow_keeps_the_elbo_tight_at_the_exact_posterior(posterior):
    vae, w, b = ppca.make_vae(posterior, flow_steps=2, flow_hidden_units=(8,))
    x, x_flat = ppca.sample_x(w, b, 16)
    np.testing.assert_allclose(vae.elbo(x), ppca.exact_log_px(x_flat, w, b), atol=5e-5)


@pytest.mark.parametrize("posterior", ["diagonal", "full"])
def test_importance_sampling_through_a_random_flow_recovers_the_exact_likelihood(posterior):
    # The flow moves q away from the exact posterior; an importance-sampled estimate stays
    # consistent only if log q(z | x) carries every step's log-determinant.
    vae, w, b = ppca.make_vae(posterior, flow_steps=2, flow_hidden_units=(8,))
    for i, step in enumerate(vae.flows):
        _randomize(step, scale=0.1, seed=10 + i)
    x, x_flat = ppca.sample_x(w, b, 16)
    exact = ppca.exact_log_px(x_flat, w, b)
    loc, scale = vae.encode(x)
    eps = tf.random.stateless_normal((64, 16, ppca.LATENT), seed=(1, 2))
    _, log_qz, q = vae.posterior_sample(tf.constant(loc), tf.constant(scale), eps)
    z0 = dists.reparameterize(posterior, tf.constant(loc), tf.constant(scale), eps)
    log_dets = q.log_prob(z0).numpy() - log_qz.numpy()  # sum over the steps, per sample
    # Leaving the log-determinants out would shift the estimate by about this much (0.04-0.09
    # nats per image here): at least twice the mean tolerance below.
    assert np.abs(log_dets.mean(axis=0)).min() > 0.04, np.abs(log_dets.mean(axis=0)).min()
    gap = exact - vae.elbo(x, num_samples=2000)
    assert gap.min() > 0.02, gap.min()  # the flow made q inexact: the ELBO is below
    # The estimate converges as k grows (measured for the diagonal case: max error 0.054,
    # 0.027, 0.007 nats at k = 500, 5000, 50000; the full case's mean error 0.007).
    error = np.abs(vae.log_likelihood(x, num_samples=50000) - exact)
    assert error.mean() < 0.02 and error.max() < 0.05, error


def test_training_with_flow_steps_moves_the_flow_and_improves_the_bound():
    keras.utils.set_random_seed(0)
    x = (np.random.default_rng(0).random((64, 4, 4, 1)) < 0.3).astype(np.float32)
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(16,), seed=1,
              objective="iwae", iwae_samples=4, flow_steps=2, flow_hidden_units=(8,))
    vae.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = vae.log_likelihood(x, num_samples=50, seed=0).mean()
    history = vae.fit(x, batch_size=16, epochs=8, verbose=0)
    after = vae.log_likelihood(x, num_samples=50, seed=0).mean()
    assert after > before + 1.0, (before, after)
    assert np.all(np.isfinite(history.history["kl"]))
    for step in vae.flows:
        assert np.abs(keras.ops.convert_to_numpy(step.out_kernel)).max() > 0
    assert vae.reconstruct(x[:4]).shape == (4, 4, 4, 1)


def test_conv_vae_takes_flow_steps_through_its_config():
    vae = ConvVAE(image_shape=(8, 8, 1), latent_dim=4, channels=(4,), hidden_units=(8,),
                  flow_steps=1, flow_hidden_units=(6,), seed=0)
    again = ConvVAE.from_config(vae.get_config())
    assert again.flow_steps == 1 and again.flow_hidden_units == (6,)
    assert [w.shape for w in again.flows[0].weights] == [w.shape for w in vae.flows[0].weights]
