"""`OneOptimizerCompile`: the one `compile` of the single-optimizer families."""

import keras
import numpy as np
import pytest

import keras_aigc as ka
from keras_aigc.models.one_optimizer_compile import OneOptimizerCompile


def vae():
    return ka.models.VAE(image_shape=(4, 4, 1), latent_dim=2, hidden_units=(4,), seed=1)


def pixel_cnn():
    return ka.models.PixelCNN((2, 2, 1), filters=4, num_layers=1, first_kernel_size=3)


def tuner():
    return ka.rl.RewardFineTuning(pixel_cnn(), ka.rl.get("mean_intensity"), seed=1)


# factory, default Adam learning rate, words of the objective in the error
FAMILIES = {
    "VAE": (vae, 1e-3, "`objective` and `beta`"),
    "ConvVAE": (lambda: ka.models.ConvVAE(image_shape=(4, 4, 1), latent_dim=2, channels=(2,),
                                          hidden_units=(), seed=1), 1e-3, "`objective`"),
    "PixelCNN": (pixel_cnn, 1e-3, "exact negative log-likelihood"),
    "RewardFineTuning": (tuner, 1e-4, "KL-regularised reward"),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_one_compile_for_every_single_optimizer_family(name):
    make, lr, _ = FAMILIES[name]
    model = make()
    assert isinstance(model, OneOptimizerCompile)
    assert type(model).compile is OneOptimizerCompile.compile
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    np.testing.assert_allclose(float(model.optimizer.learning_rate), lr)
    # Slots exist right after compile: a backup can be restored before the first step.
    assert model.optimizer.built and len(model.optimizer.variables) > 2
    model.compile(optimizer="sgd")
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    model.compile(optimizer={"class_name": "RMSprop", "config": {"learning_rate": 0.25}})
    np.testing.assert_allclose(float(model.optimizer.learning_rate), 0.25)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_fixed_objective_and_bad_optimizers_are_named(name):
    make, _, objective = FAMILIES[name]
    model = make()
    for key in ("loss", "metrics", "weighted_metrics", "loss_weights"):
        with pytest.raises(ValueError, match=f"{type(model).__name__}.compile takes no {key}=; "
                                             f"the objective is .*{objective}"):
            model.compile(**{key: "mse"})
    with pytest.raises(ValueError, match="Could not build optimizer from 'no_such_opt'"):
        model.compile(optimizer="no_such_opt")


@pytest.mark.parametrize("name", ["VAE", "PixelCNN"])
def test_compile_config_keeps_the_optimizer_and_its_schedule(name, tmp_path):
    make, _, _ = FAMILIES[name]
    model = make()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=7, decay_rate=0.5)
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.3))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert loaded.optimizer.get_config()["beta_1"] == 0.3
    lr = loaded.optimizer.get_config()["learning_rate"]
    assert lr["class_name"] == "ExponentialDecay" and lr["config"]["decay_steps"] == 7
    assert loaded.get_compile_config() == model.get_compile_config()
    uncompiled = make()
    assert uncompiled.get_compile_config() is None
