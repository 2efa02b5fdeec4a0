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


# ------------------------------------------------------- the whole model contract
EXPORT_FORMATS = ("saved_model", "tflite", "onnx", "triton")
RUNTIME_BACKENDS = ("onnx", "tflite")


def supported_formats(model):
    """The formats of `EXPORT_FORMATS` the model declares it exports to with a dynamic
    batch (`export_formats` less `fixed_batch_formats`)."""
    return tuple(f for f in EXPORT_FORMATS
                 if f in model.export_formats and f not in model.fixed_batch_formats)


def assert_export_refused(model, out_dir):
    """Every format the model leaves out is refused before anything is written, with an
    error naming the model and the format."""
    import pytest

    from keras_aigc.export import export_bundle

    for fmt in EXPORT_FORMATS:
        if fmt in supported_formats(model):
            continue
        with pytest.raises(ValueError, match=f"{type(model).__name__} cannot be exported "
                                             f"to format '(onnx|{fmt})'"):
            export_bundle(model, str(out_dir), formats=(fmt,))
        assert not out_dir.exists() and not any(out_dir.parent.glob(f".{out_dir.name}.tmp-*"))


def assert_export_parity(model, out_dir, formats=None, seed=0):
    """export_bundle through every format the model supports (`supported_formats`, or
    `formats`): each file verified against Keras, the manifest valid and every parity
    record passed. Returns the manifest."""
    from keras_aigc.export import export_bundle, load_manifest

    formats = supported_formats(model) if formats is None else formats
    manifest = export_bundle(model, str(out_dir), formats=formats, seed=seed)
    assert {f["format"] for f in manifest["files"]} == set(formats)
    for entry in manifest["files"]:
        assert entry["parity"] and all(p["passed"] for p in entry["parity"]), entry["path"]
    assert load_manifest(str(out_dir)) == manifest
    assert manifest["num_classes"] == model.num_classes
    assert manifest["model"]["family"] == model.family
    return manifest


def assert_runtime_generates(model, bundle_dir, backends=None, n=5, seed=7):
    """The TF-free runtime's `generate(n, seed, labels)` equals Keras'
    `model.generate(n, seed, labels)` (the same seed draws the same latents, or the same
    uniform noise for a PixelCNN; within one uint8 step), with the default labels and
    with explicit ones, through every runtime backend whose format the model supports
    (or `backends`)."""
    import keras_aigc_runtime
    from keras_aigc_runtime import postprocess

    if backends is None:
        backends = [b for b in RUNTIME_BACKENDS if b in supported_formats(model)]
    assert backends, f"{type(model).__name__} supports no runtime backend"
    for backend in backends:
        g = keras_aigc_runtime.load(str(bundle_dir), backend=backend)
        label_sets = [None]
        if model.num_classes is not None:
            label_sets.append(np.arange(n)[::-1] % model.num_classes)
        for labels in label_sets:
            got = g.generate(n, seed=seed, labels=labels).astype(int)
            ref = postprocess.to_uint8(model.generate(n, seed=seed, labels=labels),
                                       g.manifest["output"]["to_uint8"]).astype(int)
            assert np.abs(got - ref).max() <= 1, (backend, labels)


def run_model_test(make_model, dataset, tmp_path, replicas=True, export=True):
    """Every check a keras_aigc model family must pass, in the style of keras-hub's
    `run_backbone_test`: config round trip, fit, `.keras` round trip with identical
    outputs, 2 replicas == 1 replica, export parity through every format, and
    generation through the TF-free runtime (conditional models included).

    Args:
        make_model: callable returning a fresh (unbuilt or built) model.
        dataset: a repeated `tf.data.Dataset` of training batches.
        tmp_path: pathlib directory for files.
        replicas: bool. Run the 2-replica check (slow).
        export: bool. Run the export and runtime checks (slow): parity through every
            format the model supports, generation through the runtime when it supports
            ONNX or TFLite, and the refusal of every other format.
    """
    model = make_model()
    assert_config_round_trip(model)
    model.compile()
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    assert_keras_round_trip(model, tmp_path)
    images = model.generate(3, seed=0)
    low, high = model.value_range
    assert images.shape == (3, *model.image_shape) and images.dtype == np.float32
    assert images.min() >= low - 1e-5 and images.max() <= high + 1e-5
    if replicas:
        assert_replicas_agree(make_model, dataset)
    if export:
        assert_export_refused(model, tmp_path / "bundle")
        if supported_formats(model):
            assert_export_parity(model, tmp_path / "bundle")
        if any(b in supported_formats(model) for b in RUNTIME_BACKENDS):
            assert_runtime_generates(model, tmp_path / "bundle")
    return model
