"""`keras-aigc train` loads labels by the model contract, and counts steps through it."""
import json

import keras
import numpy as np
import yaml

from keras_aigc import models
from keras_aigc.cli.main import main


def _pixelcnn_config(num_classes):
    return {
        "model": {"name": "PixelCNN", "num_classes": num_classes, "filters": 4,
                  "num_layers": 1, "first_kernel_size": 3},
        "data": {"source": "digits", "batch_size": 16, "scaling": "sigmoid",
                 "binarize": "dynamic", "image_size": [8, 8]},
        "training": {"epochs": 1, "steps_per_epoch": 3, "num_samples": 4,
                     "validation": False},
    }


def test_trains_on_labels_follows_the_contract():
    assert models.PixelCNN.trains_on_labels({"num_classes": 10})
    assert not models.PixelCNN.trains_on_labels({"num_classes": None})
    assert not models.PixelCNN.trains_on_labels({})
    assert models.ConditionalGAN.trains_on_labels({})  # conditional family: always
    assert not models.DCGAN.trains_on_labels({})


def test_conditional_pixelcnn_trains_from_yaml(tmp_path):
    # `num_classes: 10` on PixelCNN (conditional only when given classes) used to load the
    # data without labels, and the first batch failed.
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_pixelcnn_config(10)))
    run = tmp_path / "run"
    assert main(["train", str(path), "--output", str(run)]) == 0
    model = keras.models.load_model(str(run / "model.keras"))
    assert model.num_classes == 10
    assert model.training_steps() == 3
    images = model.generate(4, seed=0, labels=[0, 1, 2, 3])
    assert np.asarray(images).shape == (4, 8, 8, 1)
    with open(run / "training.json") as f:
        assert json.load(f)["steps"] == 3


def test_training_steps_counts_train_steps_not_discriminator_updates():
    gan = models.DCGAN(latent_dim=4, image_shape=(8, 8, 1), g_filters=[8, 4],
                       d_filters=[4, 8], d_steps=2)
    assert gan.training_steps() is None  # not compiled
    gan.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    gan.fit(x, batch_size=8, epochs=1, verbose=0)
    assert gan.training_steps() == 2
    assert int(gan.d_optimizer.iterations) == 4

    vae = models.VAE(latent_dim=2, image_shape=(8, 8, 1), hidden_units=[8])
    assert vae.training_steps() is None
    vae.compile()
    vae.fit((x > 0).astype("float32"), batch_size=8, epochs=1, verbose=0)
    assert vae.training_steps() == 2
