import keras
import numpy as np
import pytest

from keras_aigc import models


def make(checks, **kwargs):
    return lambda: models.WGANGP(**{**checks.TINY, "seed": 1, **kwargs})


def test_defaults_follow_the_paper(gan_checks):
    model = make(gan_checks)()
    assert (model.loss_name, model.d_steps) == ("wasserstein", 5)
    assert (model.penalty, model.penalty_weight) == ("gradient_penalty", 10.0)
    model.compile()
    for opt in (model.g_optimizer, model.d_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        np.testing.assert_allclose(
            [float(opt.learning_rate), opt.beta_1, opt.beta_2], [1e-4, 0.5, 0.9])
    layers = [layer for layer in model.discriminator.layers]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)


def test_five_critic_updates_per_generator_update(gan_checks):
    model, history = gan_checks.fit_two_steps(make(gan_checks))
    assert int(model.g_optimizer.iterations.numpy()) == 2
    assert int(model.d_optimizer.iterations.numpy()) == 10
    assert np.all(np.array(history.history["d_penalty"]) > 0)


def test_mirrored_two_replicas_then_keras_round_trip(gan_checks, tmp_path):
    model = gan_checks.mirrored_fit(make(gan_checks, d_steps=2, ema_decay=0.5))
    assert int(model.d_optimizer.iterations.numpy()) == 4
    gan_checks.keras_round_trip(model, tmp_path)


def test_mixed_bfloat16(gan_checks):
    gan_checks.bfloat16_fit(make(gan_checks, d_steps=2))


def test_layer_normalized_critic_normalizes_each_example_on_its_own(gan_checks):
    model = make(gan_checks, d_filters=(8, 16), d_hidden_units=12, d_normalization="layer")()
    critic = model.discriminator
    norms = [(layer.name, type(layer).__name__) for layer in critic.layers
             if "Normalization" in type(layer).__name__]
    # Where the DCGAN/InfoGAN discriminator has batch norm: every conv but the first, the dense.
    assert norms == [("down1_ln", "GroupNormalization"), ("hidden_ln", "LayerNormalization")]
    assert critic.get_layer("down1_ln").groups == 1
    x = np.random.default_rng(3).normal(size=(5, 16, 16, 1)).astype(np.float32)
    # At initialization (scale 1, offset 0) each example's conv features have mean 0 and
    # variance 1 over H, W and C together.
    features = keras.Model(critic.input, critic.get_layer("down1_ln").output)(x).numpy()
    flat = features.reshape(5, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.var(axis=1), 1.0, rtol=1e-3)
    # No example's score depends on the rest of the batch (the gradient penalty is per example).
    whole = critic(x).numpy()
    single = np.concatenate([critic(x[i:i + 1]).numpy() for i in range(5)])
    np.testing.assert_allclose(whole, single, rtol=1e-5, atol=1e-6)
    assert make(gan_checks)().discriminator.count_params() < critic.count_params()


def test_layer_normalized_critic_trains_mirrored_bf16_and_round_trips(gan_checks, tmp_path):
    build = make(gan_checks, d_filters=(8, 16), d_hidden_units=12, d_normalization="layer",
                 d_steps=2)
    model = gan_checks.mirrored_fit(build)
    assert model.get_config()["d_normalization"] == "layer"
    loaded = gan_checks.keras_round_trip(model, tmp_path)
    x = np.random.default_rng(4).normal(size=(3, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.discriminator(x).numpy(), model.discriminator(x).numpy())
    gan_checks.bfloat16_fit(build)


@pytest.mark.parametrize("kwargs, match", [
    ({"d_normalization": "batch"}, r"d_normalization must be one of \(None, 'layer'\), got "
                                   "d_normalization='batch'"),
    ({"d_normalization": "layer"}, r"d_normalization='layer' normalizes every conv but the "
                                   r"first and the dense layer, and this critic has neither "
                                   r"\(d_filters=\(8,\), d_hidden_units=None\)"),
    ({"d_steps": 0}, "d_steps must be an integer >= 1, got d_steps=0"),
    ({"penalty_weight": -10.0}, "penalty_weight must be a non-negative number, got "
                                "penalty_weight=-10.0"),
    ({"loss": "wasserstein_gp"}, "Unrecognized GAN loss='wasserstein_gp'"),
    ({"image_shape": (16, 16)}, r"image_shape must be \(H, W, C\)"),
])
def test_bad_arguments(gan_checks, kwargs, match):
    args = {**gan_checks.TINY, **kwargs}
    with pytest.raises(ValueError, match=match):
        models.WGANGP(**args)
