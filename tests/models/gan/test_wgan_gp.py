import keras
import numpy as np
import pytest

from keras_aigc import models


def make(checks, **kwargs):
    return lambda: models.WGANGP(**checks.TINY, seed=1, **kwargs)


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


@pytest.mark.parametrize("kwargs, match", [
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
