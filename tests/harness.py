"""Checks every keras_aigc model needs, shared by the model test modules."""

import functools

import keras
import numpy as np
import tensorflow as tf


@functools.lru_cache(maxsize=None)
def two_replica_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole test session.

    Two MirroredStrategy objects in one process draw colliding collective keys, and the
    second one's all-reduce aborts ("Shape mismatch in the collective instance").
    """
    from keras_aigc.distribute import get_strategy

    return get_strategy("mirrored:/cpu:0,/cpu:1")  # cached: one per device set and process


def assert_config_round_trip(model):
    """from_config(get_config()) rebuilds a model whose config is identical."""
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    return clone


def assert_keras_round_trip(model, tmp_path, generate_kwargs=None):
    """save -> load_model (no custom_objects) -> same images for the same latents."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    kwargs = dict(generate_kwargs or {})
    n = len(kwargs["labels"]) if "labels" in kwargs else 6
    before = model.generate(n, seed=123, **kwargs)
    after = loaded.generate(n, seed=123, **kwargs)
    np.testing.assert_array_equal(before, after)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    return loaded


def fit_steps(make_model, strategy, weights, dataset, steps):
    """Builds under `strategy`, sets `weights`, fits `steps` steps; returns (logs, weights)."""
    with strategy.scope():
        model = make_model()
        model.compile()
    model.set_weights(weights)
    history = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return {k: v[-1] for k, v in history.history.items()}, model.get_weights()


def assert_replicas_agree(make_model, dataset, steps=2, atol=1e-5):
    """A 2-replica MirroredStrategy fit equals the 1-replica fit on the same global batches.

    Catches a loss that is not averaged over the global batch (off by the replica count),
    unsynchronised batch statistics and latents that depend on the replica layout.
    """
    weights = make_model().get_weights()
    one_logs, one_w = fit_steps(make_model, tf.distribute.get_strategy(), weights, dataset,
                                steps)
    two = two_replica_strategy()
    two_logs, two_w = fit_steps(make_model, two, weights, dataset, steps)
    assert one_logs.keys() == two_logs.keys()
    for key in one_logs:
        np.testing.assert_allclose(two_logs[key], one_logs[key], atol=atol, err_msg=key)
    moved = 0
    for a, b, w0 in zip(one_w, two_w, weights):
        np.testing.assert_allclose(b, a, atol=atol)
        moved += int(not np.allclose(a, w0))
    assert moved > 0, "training changed no weight"
    return one_logs, two_logs
