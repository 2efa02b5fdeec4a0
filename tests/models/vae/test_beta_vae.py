import keras
import numpy as np

from keras_aigc.models import VAE, BetaVAE


def test_beta_weights_the_kl_in_the_loss():
    x = (np.random.default_rng(0).random((8, 4, 4, 1)) < 0.5).astype(np.float32)
    eps = np.random.default_rng(1).standard_normal((1, 8, 3)).astype(np.float32)
    plain = VAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=2)
    beta = BetaVAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), seed=2)
    beta.set_weights([w if w.shape else np.float32(4.0) for w in plain.get_weights()])
    assert beta.beta == 4.0 and beta.get_config()["beta"] == 4.0
    loss1, s1 = plain.per_example_objective(x, None, eps)
    loss4, s4 = beta.per_example_objective(x, None, eps)
    np.testing.assert_allclose(loss4.numpy(), (s1["reconstruction"] + 4 * s1["kl"]).numpy(),
                               rtol=1e-5)
    np.testing.assert_allclose(loss1.numpy(), -s1["elbo"].numpy(), rtol=1e-5)
    # The tracked ELBO stays the unweighted bound.
    np.testing.assert_allclose(s4["elbo"].numpy(), s1["elbo"].numpy(), rtol=1e-5)


def test_round_trip(tmp_path):
    model = BetaVAE(image_shape=(4, 4, 1), latent_dim=3, hidden_units=(8,), beta=2.5, seed=2)
    path = str(tmp_path / "b.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is BetaVAE and loaded.beta == 2.5
    z = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(loaded.decode(z), model.decode(z))
