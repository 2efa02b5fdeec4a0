import os

import keras
import numpy as np
import pytest
import yaml

import keras_aigc as ka
from keras_aigc.cli import config as config_lib
from keras_aigc.cli import train as train_cli
from tests import harness
from tests.models.gan.test_dcgan import _mean_image_distance, _nn_distance

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def dense_params(n_in, n_out):
    return n_in * n_out + n_out


def test_mlp_mnist_parameter_counts_match_the_architecture():
    gan = ka.models.GAN.from_preset("mlp_mnist", seed=0)
    # G 100 -> 256 -> 512 -> 784; D 784 -> 256 -> 128 -> 1; weights plus biases.
    g = dense_params(100, 256) + dense_params(256, 512) + dense_params(512, 784)
    d = dense_params(784, 256) + dense_params(256, 128) + dense_params(128, 1)
    assert (g, d) == (559_632, 233_985)
    assert gan.generator.count_params() == g
    assert gan.discriminator.count_params() == d
    assert gan.image_shape == (28, 28, 1) and gan.latent_dim == 100
    dense = [layer for layer in gan.generator.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "linear"]
    assert gan.generator.get_layer("tanh").activation.__name__ == "tanh"
    # D ends in a logit (no sigmoid): the non-saturating loss works from logits.
    assert gan.discriminator.get_layer("logit").activation.__name__ == "linear"
    assert gan.loss_name == "non_saturating"
    gan.compile()
    for opt in (gan.g_optimizer, gan.d_optimizer):
        assert isinstance(opt, keras.optimizers.Adam)
        np.testing.assert_allclose(float(opt.learning_rate), 2e-4)
        assert opt.beta_1 == 0.5
    images = gan.generate(4, seed=0)
    assert images.shape == (4, 28, 28, 1) and images.min() >= -1 and images.max() <= 1


def test_presets_belong_to_their_class():
    with pytest.raises(ValueError, match=r"Unrecognized preset='nope'.*an architecture "
                                         r"preset of GAN \['mlp_mnist'\]"):
        ka.models.GAN.from_preset("nope")
    # Subclasses do not inherit the MLP preset.
    assert ka.models.WGANGP.presets == {}
    assert "mlp_mnist" not in ka.models.DCGAN.presets


def test_preset_round_trips_through_config_and_keras(tmp_path):
    gan = ka.models.GAN.from_preset("mlp_mnist", image_shape=(8, 8, 1), latent_dim=4,
                                    g_units=(8,), d_units=(8,), seed=3)
    harness.assert_config_round_trip(gan)
    gan.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    gan.fit(x, batch_size=4, epochs=1, verbose=0)
    harness.assert_keras_round_trip(gan, tmp_path)


def test_config_builds_the_preset_with_tanh_data():
    path = os.path.join(ROOT, "configs", "mlp_gan_mnist.yaml")
    config = config_lib.load_config(path)
    assert config["data"]["scaling"] == "tanh" and config["data"]["batch_size"] == 128
    with open(path) as f:
        raw = yaml.safe_load(f)
    assert raw["model"] == {"name": "GAN", "preset": "mlp_mnist", "loss": "non_saturating"}
    model = train_cli.build_model(config, info=None)
    assert model.generator.count_params() == 559_632
    assert model.discriminator.count_params() == 233_985


@pytest.mark.slow
def test_mlp_gan_learns_digits():
    """The DCGAN test's statistics: mean-image distance and nearest-neighbour distance to
    held-out digits both drop after a short run."""
    keras.utils.set_random_seed(0)
    train = ka.data.load("digits", batch_size=64, drop_remainder=True)
    x_val, _, _ = ka.data.load_arrays("digits", "validation")
    reference = x_val.astype(np.float32) / 127.5 - 1.0
    # The preset's own layer widths, on digits' 32x32 images.
    gan = ka.models.GAN.from_preset("mlp_mnist", image_shape=reference.shape[1:], seed=0)
    gan.compile()
    before = gan.generate(180, seed=5)
    gan.fit(train.repeat(), epochs=1, steps_per_epoch=300, verbose=0)
    after = gan.generate(180, seed=5)
    mean_before, mean_after = (_mean_image_distance(before, reference),
                               _mean_image_distance(after, reference))
    nn_before, nn_after = _nn_distance(before, reference), _nn_distance(after, reference)
    assert mean_after < 0.5 * mean_before, (mean_before, mean_after)
    assert nn_after < 0.75 * nn_before, (nn_before, nn_after)
