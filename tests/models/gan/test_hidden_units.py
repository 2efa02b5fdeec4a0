"""`g_hidden_units` / `d_hidden_units` (the InfoGAN networks of Lucic et al. 2018) on the
GAN families beyond DCGAN: the dense layers sit where the paper puts them, carry the
family's normalisation, train, and survive a .keras round trip."""

import keras
import numpy as np
import pytest

from keras_aigc import models

# (class, discriminator's dense layer name as seen in model.discriminator.layers,
#  the layer that follows it, labels?)
FAMILIES = {
    "SNGAN": (models.SNGAN, "sn_hidden", "sn_logit", False),
    "WGANGP": (models.WGANGP, "hidden", "score", False),
}


def _kernel(layer):
    return (layer.layer if isinstance(layer, keras.layers.SpectralNormalization) else layer).kernel


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_dense_layers_sit_where_the_infogan_networks_put_them(gan_checks, family, tmp_path):
    cls, hidden_name, after_name, _ = FAMILIES[family]
    model = cls(**gan_checks.TINY, seed=3, g_hidden_units=12, d_hidden_units=10)
    # G: latent (8) -> 12 -> projection to the base resolution (8 x 8 x 16).
    assert model.generator.get_layer("hidden").kernel.shape == (8, 12)
    assert model.generator.get_layer("project").kernel.shape == (12, 8 * 8 * 16)
    # D: flattened features (8 x 8 x 8 after one stride-2 conv) -> 10 -> one output.
    hidden = model.discriminator.get_layer(hidden_name)
    assert _kernel(hidden).shape == (8 * 8 * 8, 10)
    assert _kernel(model.discriminator.get_layer(after_name)).shape == (10, 1)
    if family == "SNGAN":
        # Every weight layer of an SNGAN discriminator stays spectrally normalized.
        weighted = [layer for layer in model.discriminator.layers if layer.weights]
        assert all(isinstance(layer, keras.layers.SpectralNormalization) for layer in weighted)
    else:
        # The gradient penalty is per example: no batch norm anywhere in the critic.
        assert not [layer for layer in model.discriminator.layers
                    if isinstance(layer, keras.layers.BatchNormalization)]
    assert (model.get_config()["g_hidden_units"], model.get_config()["d_hidden_units"]) == (12, 10)
    model, _ = gan_checks.fit_two_steps(lambda: model)
    loaded = gan_checks.keras_round_trip(model, tmp_path)
    assert (loaded.g_hidden_units, loaded.d_hidden_units) == (12, 10)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(loaded.discriminator(x, training=False).numpy(),
                                  model.discriminator(x, training=False).numpy())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_without_hidden_units_the_networks_are_unchanged(gan_checks, family):
    cls, hidden_name, _, _ = FAMILIES[family]
    model = cls(**gan_checks.TINY)
    names = {layer.name for layer in model.generator.layers + model.discriminator.layers}
    assert "hidden" not in names and hidden_name not in names
    assert model.get_config()["g_hidden_units"] is None


def test_conditional_gan_generator_hidden_layer_takes_latent_and_label_embedding(gan_checks,
                                                                                 tmp_path):
    model = models.ConditionalGAN(num_classes=gan_checks.NUM_CLASSES, **gan_checks.TINY,
                                  embedding_dim=5, g_hidden_units=12, seed=3)
    trunk = model.generator.get_layer("trunk")
    assert trunk.get_layer("hidden").kernel.shape == (8 + 5, 12)
    assert trunk.get_layer("project").kernel.shape == (12, 8 * 8 * 16)
    model, _ = gan_checks.fit_two_steps(lambda: model, labels=True)
    loaded = gan_checks.keras_round_trip(model, tmp_path, labels=True)
    assert loaded.g_hidden_units == 12


@pytest.mark.parametrize("make, arg", [
    (lambda tiny, kw: models.SNGAN(**tiny, **kw), "g_hidden_units"),
    (lambda tiny, kw: models.SNGAN(**tiny, **kw), "d_hidden_units"),
    (lambda tiny, kw: models.WGANGP(**tiny, **kw), "g_hidden_units"),
    (lambda tiny, kw: models.WGANGP(**tiny, **kw), "d_hidden_units"),
    (lambda tiny, kw: models.ConditionalGAN(num_classes=3, **tiny, **kw), "g_hidden_units"),
])
@pytest.mark.parametrize("value", [0, -1, 2.5, True, "1024"])
def test_hidden_units_must_be_positive_integers(gan_checks, make, arg, value):
    with pytest.raises(ValueError, match=f"{arg} must be None or a positive integer, "
                                         f"got {arg}={value!r}"):
        make(gan_checks.TINY, {arg: value})


def test_conditional_gan_has_no_d_hidden_units_its_dense_layer_is_feature_dim(gan_checks):
    with pytest.raises(ValueError, match="ConditionalGAN takes no d_hidden_units: .* Set "
                                         "feature_dim=10 instead"):
        models.ConditionalGAN(num_classes=3, **gan_checks.TINY, d_hidden_units=10)
