import os

import keras
import numpy as np
import pytest

from keras_aigc.cli import config as config_lib
from keras_aigc.cli import train
from keras_aigc.models import VAE, ConditionalVAE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = ["data.source=digits", "data.batch_size=32", "training.epochs=1",
         "training.steps_per_epoch=2", "training.num_samples=4", "training.verbose=0",
         "model.hidden_units=[16]", "model.latent_dim=4"]


@pytest.mark.parametrize("name, cls", [("vae_mnist", VAE), ("cvae_mnist", ConditionalVAE)])
def test_config_validates_and_trains_through_the_cli(tmp_path, name, cls):
    path = os.path.join(ROOT, "configs", f"{name}.yaml")
    config = config_lib.load_config(path)
    assert config["data"]["binarize"] == "dynamic"
    assert config["model"]["likelihood"] == "bernoulli"
    small = config_lib.load_config(path, SMALL)
    model, history = train.run(small, str(tmp_path / "run"))
    assert isinstance(model, cls)
    assert {"elbo", "reconstruction", "kl", "val_elbo"} <= set(history)
    assert all(np.isfinite(v).all() for v in history.values())
    assert os.path.exists(tmp_path / "run" / "samples" / "final.png")
    loaded = keras.models.load_model(str(tmp_path / "run" / "model.keras"))
    assert type(loaded) is cls
    if cls is ConditionalVAE:
        assert loaded.num_classes == 10
    z = np.zeros((2, 4), np.float32)
    labels = {"labels": np.array([0, 1])} if cls is ConditionalVAE else {}
    np.testing.assert_array_equal(loaded.decode(z, **labels), model.decode(z, **labels))


def test_bad_model_key_fails_with_its_path():
    path = os.path.join(ROOT, "configs", "vae_mnist.yaml")
    with pytest.raises(config_lib.ConfigError, match="model.likelyhood"):
        config_lib.load_config(path, ["model.likelyhood=gaussian"])


@pytest.mark.mnist
@pytest.mark.parametrize("name", ["vae_mnist", "cvae_mnist"])
def test_mnist_config_trains_two_steps(tmp_path, name, mnist_path):
    path = os.path.join(ROOT, "configs", f"{name}.yaml")
    config = config_lib.load_config(path, [
        f"data.source=npz:{mnist_path}", "training.epochs=1", "training.steps_per_epoch=2",
        "training.validation=false", "training.num_samples=4", "training.verbose=0"])
    model, history = train.run(config, str(tmp_path / "run"))
    assert model.image_shape == (28, 28, 1)
    assert np.isfinite(history["elbo"]).all()
