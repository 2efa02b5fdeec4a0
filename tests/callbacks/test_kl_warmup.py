import keras
import numpy as np
import pytest

from keras_aigc.callbacks import KLWarmup
from keras_aigc.models import VAE


class _Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(float(keras.ops.convert_to_numpy(self.model.kl_weight)))


def test_kl_weight_ramps_linearly_to_beta_and_resumes():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=2, hidden_units=(8,), beta=2.0, seed=0)
    vae.compile()
    x = (np.random.default_rng(0).random((12, 4, 4, 1)) < 0.5).astype(np.float32)
    record = _Record()
    warmup = KLWarmup(warmup_steps=4, start=0.0)
    vae.fit(x, batch_size=4, epochs=1, verbose=0, callbacks=[warmup, record])
    np.testing.assert_allclose(record.weights, [0.0, 0.5, 1.0])
    # A second fit continues from the optimizer's step count.
    vae.fit(x, batch_size=4, epochs=1, verbose=0, callbacks=[warmup, record])
    np.testing.assert_allclose(record.weights, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0])


def test_kl_weight_zero_removes_the_kl_from_the_loss():
    vae = VAE(image_shape=(4, 4, 1), latent_dim=2, hidden_units=(8,), seed=0)
    vae.kl_weight.assign(0.0)
    x = (np.random.default_rng(0).random((4, 4, 4, 1)) < 0.5).astype(np.float32)
    eps = np.zeros((1, 4, 2), np.float32)
    loss, stats = vae.per_example_objective(x, None, eps)
    np.testing.assert_allclose(loss.numpy(), stats["reconstruction"].numpy())
    assert np.all(stats["kl"].numpy() > 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"warmup_steps": 0}, "warmup_steps=0"),
    ({"warmup_steps": 10, "start": -1.0}, "start=-1.0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KLWarmup(**kwargs)


def test_needs_a_vae():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="needs a VAE"):
        model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0,
                  callbacks=[KLWarmup(warmup_steps=3)])
