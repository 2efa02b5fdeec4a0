
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_aigc as ka
from keras_aigc.models import VAE
from tests.models.vae import ppca


def _binary(n, shape=(4, 4, 1), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, *shape)) < 0.4).astype(np.float32)


def _gaussian_kl(m0, c0, m1, c1):
    """KL(N(m0, c0) || N(m1, c1)) in closed form."""
    k = len(m0)
    c1_inv = np.linalg.inv(c1)
    d = m1 - m0
    return 0.5 * (np.trace(c1_inv @ c0) + d @ c1_inv @ d - k
                  + np.log(np.linalg.det(c1) / np.linalg.det(c0)))


# ------------------------------------------------------- probabilistic PCA: exactness
@pytest.mark.parametrize("posterior", ["full", "diagonal"])
def test_elbo_is_tight_at_the_exact_posterior(posterior):
    vae, w, b = ppca.make_vae(posterior)
    x, x_flat = ppca.sample_x(w, b, 32)
    exact = ppca.exact_log_px(x_flat, w, b)
    np.testing.assert_allclose(vae.elbo(x), exact, atol=5e-5, rtol=0)
    # Every importance weight equals p(x) here, so chunks of any size combine exactly.
    np.testing.assert_allclose(vae.log_likelihood(x, num_samples=50, chunk_size=7), exact,
                               atol=5e-5, rtol=0)


@pytest.mark.parametrize("posterior", ["full", "diagonal"])
def test_perturbed_encoder_elbo_is_below_by_the_posterior_kl(posterior):
    vae, w, b = ppca.make_vae(posterior, loc_shift=0.5, scale_factor=1.3)
    x, x_flat = ppca.sample_x(w, b, 16)
    exact = ppca.exact_log_px(x_flat, w, b)
    n = 4000
    elbo = vae.elbo(x, num_samples=n)
    assert np.all(elbo < exact)
    # log p(x) - ELBO = KL(q(z|x) || p(z|x)), both Gaussians here.
    a, c, cov = ppca.exact_posterior(w, b)
    loc, scale = vae.encode(x)
    gaps = []
    for i in range(len(x)):
        q_cov = np.diag(scale[i] ** 2) if posterior == "diagonal" else scale[i] @ scale[i].T
        gaps.append(_gaussian_kl(loc[i], q_cov, a @ x_flat[i] + c, cov))
    # Sampling error of a mean of n log-weights is well under 0.05 nats at this gap.
    np.testing.assert_allclose(exact - elbo, gaps, atol=0.05)
    assert min(gaps) > 0.1


@pytest.mark.parametrize("posterior", ["full", "diagonal"])
def test_importance_sampled_log_likelihood_matches_exact(posterior):
    vae, w, b = ppca.make_vae(posterior, loc_shift=0.3, scale_factor=1.2)
    x, x_flat = ppca.sample_x(w, b, 24)
    exact = ppca.exact_log_px(x_flat, w, b)
    ll = vae.log_likelihood(x, num_samples=5000)
    assert np.max(np.abs(ll - exact)) < 0.05
    assert np.all(vae.elbo(x, num_samples=200) < exact)


def test_log_likelihood_does_not_decrease_with_k():
    vae, w, b = ppca.make_vae("full", loc_shift=1.5, scale_factor=0.7)
    x, x_flat = ppca.sample_x(w, b, 64)
    exact = ppca.exact_log_px(x_flat, w, b)
    means = [np.mean(vae.log_likelihood(x, num_samples=k, seed=3)) for k in (1, 8, 64, 512)]
    assert all(hi > lo for lo, hi in zip(means, means[1:], strict=False)), means
    assert means[-1] < np.mean(exact)


# ------------------------------------------------------------------ training
def test_training_on_binarized_digits_improves_validation_elbo():
    keras.utils.set_random_seed(0)
    train = ka.data.load("digits", batch_size=64, scaling="sigmoid", binarize="dynamic")
    val, info = ka.data.load("digits", split="validation", batch_size=500, scaling="sigmoid",
                             binarize="static", with_info=True)
    x_val = next(iter(val)).numpy()
    vae = VAE(image_shape=info.image_shape, latent_dim=8, hidden_units=(128,), seed=0)
    vae.compile(optimizer=keras.optimizers.Adam(2e-3))
    before = vae.elbo(x_val, num_samples=4).mean()
    history = vae.fit(train, epochs=3, validation_data=val, verbose=0)
    after = vae.elbo(x_val, num_samples=4).mean()
    assert after > before + 100.0, (before, after)
    assert set(history.history) >= {"elbo", "reconstruction", "kl", "val_elbo"}
    assert "loss" not in history.history
    assert history.history["val_elbo"][-1] > history.history["val_elbo"][0]


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [
    {},
    {"objective": "iwae", "iwae_samples": 3, "posterior": "full"},
    {"prior": "mixture", "prior_components": 3, "likelihood": "logistic"},
    {"objective": "iwae", "iwae_samples": 2, "flow_steps": 2, "flow_hidden_units": (6,)},
])
def test_two_replica_step_equals_one_replica_step(kwargs, two_replicas):
    x = _binary(16)
    if kwargs.get("likelihood") == "logistic":
        x = np.round(np.random.default_rng(1).random((16, 4, 4, 1)) * 255) / 255
    x = x.astype(np.float32)
    ref = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=7, **kwargs)
    init = ref.get_weights()

    def run(strategy):
        with strategy.scope():
            vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=7, **kwargs)
            vae.set_weights(init)
            vae.compile(optimizer=keras.optimizers.SGD(0.05))
        ds = tf.data.Dataset.from_tensor_slices(x).batch(8, drop_remainder=True)
        vae.fit(ds, epochs=1, verbose=0)
        return [keras.ops.convert_to_numpy(v) for v in vae.trainable_variables]

    one = run(tf.distribute.get_strategy())
    two = run(two_replicas)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
    assert not np.allclose(one[0], init[0])


# ------------------------------------------------------------- serialization
@pytest.mark.parametrize("kwargs", [
    {},
    {"posterior": "full", "prior": "mixture", "prior_components": 4, "objective": "iwae",
     "iwae_samples": 2, "likelihood": "gaussian", "beta": 0.5, "activation": "tanh"},
    {"likelihood": "gaussian", "gaussian_scale": 0.2},
    {"flow_steps": 2, "flow_hidden_units": (5, 4), "objective": "iwae", "iwae_samples": 2},
])
def test_keras_round_trip_decodes_identically(tmp_path, kwargs):
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8, 6), seed=3, **kwargs)
    vae.compile()
    x = _binary(16)
    vae.fit(x, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is VAE
    assert loaded.get_config() == vae.get_config()
    assert loaded.optimizer.get_config() == vae.optimizer.get_config()
    for a, b in zip(loaded.optimizer.variables, vae.optimizer.variables, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a),
                                      keras.ops.convert_to_numpy(b))
    z = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(loaded.decode(z), vae.decode(z))
    np.testing.assert_array_equal(loaded.log_likelihood(x, num_samples=10, seed=1),
                                  vae.log_likelihood(x, num_samples=10, seed=1))
    np.testing.assert_array_equal(loaded.generate(4, seed=2), vae.generate(4, seed=2))


def test_config_lists_every_constructor_argument():
    import inspect

    params = set(inspect.signature(VAE.__init__).parameters) - {"self", "kwargs"}
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    assert params <= set(vae.get_config())
    again = VAE.from_config(vae.get_config())
    assert again.get_config() == vae.get_config()


def test_builds_without_data_and_export_hooks():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), posterior="full", seed=1)
    assert vae.built
    z = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    dec = vae.decoder_mean_model()
    assert isinstance(dec, keras.Model)
    out = dec(z)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(np.asarray(out), vae.decode(z), atol=1e-6)
    loc, scale = vae.encoder_model()(_binary(2))
    assert loc.shape == (2, 3) and scale.shape == (2, 3, 3)
    np.testing.assert_array_equal(np.triu(np.asarray(scale), 1), 0)
    assert vae.value_range == (0.0, 1.0)
    assert vae(_binary(2)).shape == (2, 4, 4, 1)


def test_generate_and_reconstruct_are_in_range():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1,
              prior="mixture")
    images = vae.generate(5, seed=0)
    assert images.shape == (5, 4, 4, 1) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(images, vae.generate(5, seed=0))
    assert vae.reconstruct(_binary(3)).shape == (3, 4, 4, 1)
    prior = vae.latent_prior()
    assert prior["type"] == "mixture" and np.isclose(sum(prior["weights"]), 1.0)
    assert np.array(prior["locs"]).shape == (10, 3)
    assert VAE(image_shape=(4, 4, 1), latent_dim=3).latent_prior() == {"type": "normal",
                                                                       "latent_dim": 3}


def test_mixture_prior_samples_follow_its_components():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=2, hidden_units=(8,), seed=1,
              prior="mixture", prior_components=2)
    vae.prior_logits.assign([0.0, np.log(3.0)])
    vae.prior_locs.assign([[-10.0, 0.0], [10.0, 0.0]])
    z = vae.sample_prior(4000, seed=0)
    np.testing.assert_allclose((z[:, 0] > 0).mean(), 0.75, atol=0.03)
    np.testing.assert_allclose(np.abs(z[:, 0]).mean(), 10.0, atol=0.1)
    # The TFP prior used in training agrees with these samples.
    log_p = vae.prior_distribution().log_prob(z).numpy()
    assert np.all(np.isfinite(log_p)) and log_p.mean() > -6


def test_bits_per_dim_is_nll_in_bits():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    x = _binary(4)
    ll = vae.log_likelihood(x, num_samples=20, seed=5)
    bpd = vae.bits_per_dim(x, num_samples=20, seed=5)
    np.testing.assert_allclose(bpd, -ll / (16 * np.log(2)), rtol=1e-6)


# ---------------------------------------------------------------- bad inputs
def test_unknown_likelihood_is_rejected():
    with pytest.raises(ValueError, match=r"likelihood='poisson'.*bernoulli"):
        VAE(image_shape=(4, 4, 1), likelihood="poisson")


@pytest.mark.parametrize("kwargs, match", [
    ({"posterior": "flow"}, "posterior='flow'"),
    ({"prior": "vamp"}, "prior='vamp'"),
    ({"objective": "cubo"}, "objective='cubo'"),
    ({"iwae_samples": 0}, "iwae_samples=0"),
    ({"latent_dim": 0}, "latent_dim=0"),
    ({"image_shape": (4, 4)}, "image_shape"),
    ({"beta": -1.0}, "beta=-1.0"),
    ({"gaussian_scale": 0.1}, "only applies to likelihood='gaussian'"),
    ({"likelihood": "gaussian", "gaussian_scale": 0.0}, "gaussian_scale must be > 0"),
    ({"flow_steps": -1}, "flow_steps=-1"),
    ({"flow_steps": 1.5}, "flow_steps=1.5"),
    ({"flow_steps": True}, "flow_steps=True"),
    ({"flow_steps": 2, "flow_hidden_units": ()}, "flow_hidden_units must hold"),
    ({"flow_hidden_units": (8, 0)}, "flow_hidden_units entries"),
    ({"flow_hidden_units": "64"}, "flow_hidden_units='64'"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**{"image_shape": (4, 4, 1), **kwargs})


@pytest.mark.parametrize("num_samples", [0, -3, 2.5])
def test_num_samples_below_one_is_rejected(num_samples):
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    with pytest.raises(ValueError, match=f"num_samples={num_samples}"):
        vae.log_likelihood(_binary(2), num_samples=num_samples)
    with pytest.raises(ValueError, match="num_samples"):
        vae.elbo(_binary(2), num_samples=num_samples)


def test_wrong_input_shape_is_rejected():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    vae.compile()
    wrong = _binary(4, shape=(5, 4, 1))
    for fn in (vae.elbo, vae.log_likelihood, vae.encode, vae.reconstruct):
        with pytest.raises(ValueError, match=r"\(4, 5, 4, 1\).*image_shape=\(4, 4, 1\)"):
            fn(wrong)
    with pytest.raises(ValueError, match=r"image_shape=\(4, 4, 1\)"):
        vae.fit(wrong, batch_size=2, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"z has shape"):
        vae.decode(np.zeros((2, 5), np.float32))


def test_non_binary_data_for_bernoulli_says_binarize():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    vae.compile()
    grey = np.full((4, 4, 4, 1), 0.5, np.float32)
    with pytest.raises(ValueError, match="(?i)binarize"):
        vae.elbo(grey)
    with pytest.raises(ValueError, match="(?i)binarize"):
        vae.log_likelihood(grey, num_samples=2)
    # Inside the compiled train step the check is a TF assertion with the same advice.
    with pytest.raises(tf.errors.InvalidArgumentError, match="binarize"):
        vae.fit(grey, batch_size=2, epochs=1, verbose=0)


def test_labels_are_rejected_by_unconditional_model():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    with pytest.raises(ValueError, match="unconditional"):
        vae.generate(2, labels=[0, 1])


def test_compile_rejects_a_loss():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=1)
    with pytest.raises(ValueError, match="no loss="):
        vae.compile(loss="mse")


def test_bits_per_dim_from_log_likelihood_adds_the_gaussian_bin_width():
    # keras-aigc evaluate converts through this method, so both agree with bits_per_dim.
    ll = np.array([-10.0])
    bernoulli = VAE(image_shape=(2, 2, 1), latent_dim=1, hidden_units=())
    gaussian = VAE(image_shape=(2, 2, 1), latent_dim=1, hidden_units=(), likelihood="gaussian")
    assert bernoulli.bits_per_dim_from_log_likelihood(ll)[0] == pytest.approx(
        10.0 / (4 * np.log(2.0)))
    assert gaussian.bits_per_dim_from_log_likelihood(ll)[0] == pytest.approx(
        (10.0 + 4 * np.log(255.0)) / (4 * np.log(2.0)))
