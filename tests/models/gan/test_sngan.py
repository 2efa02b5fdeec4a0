import keras
import numpy as np
import pytest

from keras_aigc import models


def make(checks, **kwargs):
    return lambda: models.SNGAN(**checks.TINY, seed=2, **kwargs)


def test_every_discriminator_weight_layer_is_spectrally_normalized(gan_checks):
    model = make(gan_checks)()
    assert model.loss_name == "hinge"
    weighted = [layer for layer in model.discriminator.layers if layer.weights]
    assert len(weighted) == 3  # conv0a, conv0b, logit
    assert all(isinstance(layer, keras.layers.SpectralNormalization) for layer in weighted)


def test_without_stride1_convs_the_discriminator_has_only_the_strided_convs(gan_checks, tmp_path):
    model = make(gan_checks, d_stride1_convs=False, d_hidden_units=10)()
    weighted = [layer for layer in model.discriminator.layers if layer.weights]
    assert [layer.name for layer in weighted] == ["sn_conv0b", "sn_hidden", "sn_logit"]
    assert all(isinstance(layer, keras.layers.SpectralNormalization) for layer in weighted)
    # TINY: 16x16x1 -> one stride-2 conv of 8 filters -> 8x8x8 flattened into the dense 10.
    assert weighted[1].layer.kernel.shape == (8 * 8 * 8, 10)
    assert model.get_config()["d_stride1_convs"] is False
    model, _ = gan_checks.fit_two_steps(lambda: model)
    loaded = gan_checks.keras_round_trip(model, tmp_path)
    assert loaded.d_stride1_convs is False
    x = np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(loaded.discriminator(x, training=False).numpy(),
                                  model.discriminator(x, training=False).numpy())


def test_training_keeps_the_kernels_spectrally_normalized(gan_checks):
    model, _ = gan_checks.fit_two_steps(make(gan_checks))
    for layer in model.discriminator.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            kernel = keras.ops.convert_to_numpy(layer.normalized_kernel())
            kernel = kernel.reshape(-1, kernel.shape[-1])
            sigma = np.linalg.svd(kernel, compute_uv=False)[0]
            # One power iteration per call from a random start: close to 1, not exact.
            assert 0.5 < sigma < 1.5, (layer.name, sigma)


def test_mirrored_two_replicas_then_keras_round_trip(gan_checks, tmp_path):
    model = gan_checks.mirrored_fit(make(gan_checks))
    gan_checks.keras_round_trip(model, tmp_path)


def test_mixed_bfloat16(gan_checks):
    gan_checks.bfloat16_fit(make(gan_checks))


@pytest.mark.parametrize("kwargs, match", [
    ({"power_iterations": 0}, "power_iterations must be an integer >= 1, got "
                              "power_iterations=0"),
    ({"loss": "hinged"}, "Unrecognized GAN loss='hinged'"),
    ({"d_stride1_convs": "no"}, "d_stride1_convs must be true or false, got "
                                "d_stride1_convs='no'"),
    ({"d_steps": -1}, "d_steps must be an integer >= 1"),
    ({"penalty": "r1", "penalty_weight": -0.1}, "penalty_weight=-0.1"),
])
def test_bad_arguments(gan_checks, kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.SNGAN(**{**gan_checks.TINY, **kwargs})
