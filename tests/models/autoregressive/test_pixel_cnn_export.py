"""PixelCNN export: the whole sampler (nested while loops) in SavedModel, TFLite (WHILE)
and ONNX (Loop), driven by uniform noise, and the exact log-likelihood, through the bundle,
the TF-free runtime (LiteRT and ONNX Runtime) and the server."""

import io

import numpy as np
import pytest

import keras_aigc as ka
import keras_aigc_runtime
from keras_aigc.export import export_bundle, load_manifest
from keras_aigc_runtime import postprocess
from keras_aigc_runtime.generator import InputError


def tiny(shape=(3, 3, 1), distribution="bernoulli", **kwargs):
    kwargs.setdefault("filters", 4)
    kwargs.setdefault("num_layers", 2)
    kwargs.setdefault("first_kernel_size", 3)
    kwargs.setdefault("num_mixtures", 2)
    model = ka.models.PixelCNN(shape, distribution=distribution, **kwargs)
    model.build()
    return model


def exported(model, path, formats=("saved_model", "tflite", "onnx")):
    return export_bundle(model, str(path), formats=formats, seed=0, serving_batch_sizes=())


@pytest.mark.slow
@pytest.mark.parametrize("distribution,shape,num_classes", [
    ("bernoulli", (3, 3, 1), None),
    ("bernoulli", (3, 3, 1), 3),
    ("categorical", (2, 2, 1), None),
    ("logistic_mixture", (2, 2, 3), None),
])
def test_bundle_samples_the_same_images_and_likelihoods_as_keras(tmp_path, distribution, shape,
                                                                 num_classes):
    model = tiny(shape, distribution, num_classes=num_classes)
    manifest = exported(model, tmp_path / "b")
    assert load_manifest(str(tmp_path / "b")) == manifest
    assert manifest["latent"] is None
    assert manifest["noise"] == {"distribution": "uniform", "low": 0.0, "high": 1.0,
                                 "shape": list(shape), "dtype": "float32"}
    assert set(manifest["signatures"]) == {"generate", "log_prob"}
    # Every file holds its signature: the generate files the whole loop, checked exactly
    # (images are value indices / 255, so parity means the same sampled pixels).
    for entry in manifest["files"]:
        assert all(p["passed"] for p in entry["parity"]), entry["path"]
        for p in entry["parity"]:
            if p["signature"] == "generate":
                assert p["max_abs_error"] <= 1e-6, (entry["path"], p)
            else:
                assert p["tolerance"] == {"max_rel_error": 1e-5}
    labels = None if num_classes is None else np.array([2, 0, 1, 1, 0], np.int32)
    ref = model.generate(5, seed=11, labels=labels)  # uniform noise from the seed
    ref_ll = model.log_likelihood(ref, labels)
    assert {f["format"] for f in manifest["files"]} == {"saved_model", "tflite", "onnx"}
    for backend in ("tflite", "onnx"):
        g = keras_aigc_runtime.load(str(tmp_path / "b"), backend=backend)
        assert g.signatures == ["generate", "log_prob"]
        pixels = g.generate(5, seed=11, labels=labels)
        np.testing.assert_array_equal(pixels, g.to_uint8(ref))
        # uint8 pixels map back to the model's values; float images go in as they are.
        np.testing.assert_allclose(g.log_prob(pixels, labels), ref_ll, rtol=1e-5)
        np.testing.assert_allclose(g.log_prob(ref, labels), ref_ll, rtol=1e-5)
        # Given noise, the runtime's generate signature is the Keras sampler.
        noise = postprocess.sample_noise(manifest["noise"], 4, np.random.default_rng(5))
        np.testing.assert_array_equal(noise, model.noise(4, seed=5))
        inputs = {"noise": noise}
        if num_classes is not None:
            inputs["labels"] = np.array([0, 1, 2, 0], np.int32)
        out = g.run(inputs, "generate")["image"]
        np.testing.assert_array_equal(out, model.sample_from_noise(noise, inputs.get("labels")))


@pytest.mark.slow
def test_runtime_refuses_bad_noise_and_latent_calls_with_clear_errors(tmp_path):
    model = tiny()
    manifest = exported(model, tmp_path / "b", formats=("tflite",))
    g = keras_aigc_runtime.load(str(tmp_path / "b"), backend="tflite")
    with pytest.raises(InputError, match=r"noise must be in \[0.0, 1.0\)"):
        g.run({"noise": np.full((1, 3, 3, 1), 1.0, np.float32)})
    with pytest.raises(InputError, match=r"noise must be in \[0.0, 1.0\)"):
        g.run({"noise": np.full((1, 3, 3, 1), -0.1, np.float32)})
    with pytest.raises(InputError, match="must have shape"):
        g.run({"noise": np.zeros((1, 2, 3, 1), np.float32)})
    with pytest.raises(InputError, match="must hold floats"):
        g.run({"noise": np.zeros((1, 3, 3, 1), np.int32)})
    with pytest.raises(InputError, match="labels are only for conditional models"):
        g.generate(2, labels=1)
    with pytest.raises(InputError, match="images must have shape"):
        g.log_prob(np.zeros((3, 3, 1), np.float32))
    with pytest.raises(ValueError, match="has no latent prior .*takes 'noise'"):
        g.sample_latents(2)
    # A manifest whose noise input lacks its noise entry is refused on load.
    broken = dict(manifest, noise=None)
    with pytest.raises(ValueError, match="a noise input needs a noise entry"):
        keras_aigc_runtime.manifest.check_facts(broken)
    reversed_range = dict(manifest, noise=dict(manifest["noise"], low=1.0, high=0.0))
    with pytest.raises(ValueError, match=r"noise low/high is \[1.0, 0.0\]; it needs finite"):
        keras_aigc_runtime.manifest.check_facts(reversed_range)


@pytest.mark.slow
def test_server_png_route_samples_a_pixel_cnn_bundle(tmp_path):
    from PIL import Image

    from tests.runtime.conftest import http, serve

    model = tiny((4, 4, 1), num_classes=2)
    exported(model, tmp_path / "b", formats=("tflite",))
    expected = keras_aigc_runtime.load(str(tmp_path / "b"), backend="tflite").generate(
        3, seed=4, labels=1)
    np.testing.assert_array_equal(expected, (model.generate(3, seed=4, labels=1) * 255)
                                  .astype(np.uint8))
    with serve(str(tmp_path / "b"), "--backend", "tflite") as s:
        name = model.name
        status, _, body = http("GET", s.base + f"/v2/models/{name}/generate.png"
                                              "?n=3&seed=4&labels=1&ncols=3")
        assert status == 200, body
        grid = np.asarray(Image.open(io.BytesIO(body)))
        assert grid.shape == (4, 12)  # one row of three 4x4 tiles, as image_grid lays out
        for c in range(3):
            np.testing.assert_array_equal(grid[:, 4 * c:4 * c + 4], expected[c, ..., 0])
        status, _, body = http("GET", s.base + f"/v2/models/{name}/generate.png?n=2&labels=7")
        assert status == 400 and b"labels" in body
