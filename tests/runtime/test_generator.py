"""`load()` and `Generator`: parity with Keras through raw `run`, generate, input checks."""

import json
import os
import shutil

import numpy as np
import pytest

import keras_aigc_runtime
from keras_aigc_runtime import postprocess


def _tolerance(bundle, path):
    with open(os.path.join(bundle, "manifest.json")) as f:
        entry = next(e for e in json.load(f)["files"] if e["path"] == path)
    return entry["parity"][0]["tolerance"]


def _keras(model, z, labels=None):
    return model.generate_from_latents(z, labels)


def _psnr(a, b, peak=2.0):
    return 10 * np.log10(peak**2 / np.mean((a - b) ** 2))


@pytest.mark.parametrize("backend,variant,path", [("onnx", None, "model.onnx"),
                                                  ("tflite", None, "model.tflite"),
                                                  ("tflite", "int8", "model_int8.tflite")])
def test_run_matches_keras_within_parity_tolerance(dcgan_bundle, backend, variant, path):
    model, bundle = dcgan_bundle
    g = keras_aigc_runtime.load(bundle, backend=backend, variant=variant)
    stem = path.rsplit(".", 1)[0]
    # TFLite: the dynamic-batch file and the default fixed-batch files for 1 and 64.
    assert g.files == ([path] if backend == "onnx"
                       else [path, f"{stem}_b1.tflite", f"{stem}_b64.tflite"])
    tol = _tolerance(bundle, path)
    for n in (1, 5):
        z = np.random.default_rng().standard_normal((n, 8)).astype(np.float32)
        out = g.run({"z": z})["image"]
        ref = _keras(model, z)
        assert out.shape == ref.shape == (n, 8, 8, 1) and out.dtype == np.float32
        if "max_abs_error" in tol:
            np.testing.assert_allclose(out, ref, rtol=0, atol=tol["max_abs_error"])
        else:  # full-integer file: same PSNR bar as the exporter's
            assert _psnr(out, ref) >= tol["min_psnr_db"]


def test_default_bundle_runs_batch_1_and_64_on_fixed_files(dcgan_bundle, monkeypatch):
    from keras_aigc_runtime.manifest import load_manifest

    model, bundle = dcgan_bundle
    entries = {f["path"]: f for f in load_manifest(bundle)["files"]}
    for path, n in (("model_b1.tflite", 1), ("model_b64.tflite", 64),
                    ("model_int8_b1.tflite", 1), ("model_int8_b64.tflite", 64)):
        (sig,) = entries[path]["signatures"]
        assert sig["batch_size"] == n and sig["inputs"][0]["shape"] == [n, 8]
        assert {p["batch_size"] for p in entries[path]["parity"]} == {n}
    assert entries["model.tflite"]["signatures"][0]["batch_size"] == -1

    g = keras_aigc_runtime.load(bundle, backend="tflite")
    runner = g._runners["generate"]
    used = []
    run_file = runner._run_file

    def spy(part, inputs):
        used.append(part[0])
        return run_file(part, inputs)

    monkeypatch.setattr(runner, "_run_file", spy)
    for n in (1, 64, 5):
        z = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
        atol = _tolerance(bundle, {1: "model_b1.tflite", 64: "model_b64.tflite"}.get(
            n, "model.tflite"))["max_abs_error"]
        np.testing.assert_allclose(g.run({"z": z})["image"], _keras(model, z), rtol=0,
                                   atol=atol)
    assert used == [1, 64, -1]  # batch 5 has no fixed file: the dynamic one


def test_fixed_batch_file_splits_and_pads(fixed_batch_bundle):
    model, bundle = fixed_batch_bundle
    g = keras_aigc_runtime.load(bundle, backend="tflite")
    assert g.batch_sizes() == [4]
    atol = _tolerance(bundle, "model_b4.tflite")["max_abs_error"]
    for n in (1, 4, 9):  # padded, exact, 4 + 4 + padded 1
        z = np.random.default_rng().standard_normal((n, 8)).astype(np.float32)
        np.testing.assert_allclose(g.run({"z": z})["image"], _keras(model, z), rtol=0, atol=atol)


def test_conditional_run_matches_keras(conditional_bundle):
    model, bundle = conditional_bundle
    g = keras_aigc_runtime.load(bundle)
    z = np.random.default_rng().standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 2, 1, 0], np.int32)
    atol = _tolerance(bundle, "model.onnx")["max_abs_error"]
    np.testing.assert_allclose(g.run({"z": z, "labels": labels})["image"],
                               _keras(model, z, labels), rtol=0, atol=atol)


def test_generate_is_seeded_prior_sample_through_manifest_postprocessing(dcgan_bundle):
    model, bundle = dcgan_bundle
    g = keras_aigc_runtime.load(bundle)
    pixels = g.generate(3, seed=7)
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 8, 8, 1)
    z = np.random.default_rng(7).standard_normal((3, 8)).astype(np.float32)
    expected = postprocess.to_uint8(g.run({"z": z})["image"], g.manifest["output"]["to_uint8"])
    np.testing.assert_array_equal(pixels, expected)
    np.testing.assert_array_equal(g.generate(3, seed=7), pixels)
    assert not np.array_equal(g.generate(3, seed=8), pixels)


def test_generate_labels_select_the_class(conditional_bundle):
    model, bundle = conditional_bundle
    g = keras_aigc_runtime.load(bundle)
    z = np.random.default_rng(3).standard_normal((4, 4)).astype(np.float32)
    ref = np.clip(np.round((_keras(model, z, np.full(4, 2)) + 1) * 127.5), 0, 255)
    np.testing.assert_allclose(g.generate(4, seed=3, labels=2), ref, atol=1)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\) \(num_classes=3\), "
                                         r"got labels=\[3\]"):
        g.generate(2, labels=[0, 3])
    with pytest.raises(ValueError, match=r"expected shape \(2,\), got labels of shape \(3,\)"):
        g.generate(2, labels=[0, 1, 2])
    # No labels: the classes in turn, as keras_aigc's generate() picks them.
    np.testing.assert_allclose(g.generate(4, seed=3),
                               np.clip(np.round((_keras(model, z, np.arange(4) % 3) + 1)
                                                * 127.5), 0, 255), atol=1)


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_conditional_vae_bundle_generates_with_labels_like_keras(cvae_bundle, backend):
    """The runtime picks the decoder's inputs by role: labels work for any family."""
    model, bundle = cvae_bundle
    g = keras_aigc_runtime.load(bundle, backend=backend)
    assert g.family == "vae" and g.num_classes == 3
    z = postprocess.sample_latents(g.manifest["latent"], 5, np.random.default_rng(11))
    labels = np.array([2, 0, 1, 1, 2])

    def pixels(images):
        return postprocess.to_uint8(images, g.manifest["output"]["to_uint8"]).astype(int)

    got = g.generate(5, seed=11, labels=labels).astype(int)
    assert np.abs(got - pixels(model.decode(z, labels))).max() <= 1
    # The default labels are Keras' default: the classes in turn.
    np.testing.assert_array_equal(g.generate(5, seed=11, labels=[0, 1, 2, 0, 1]),
                                  g.generate(5, seed=11))
    assert np.abs(g.decode(z, labels).astype(int) - got).max() == 0
    # Labels change the picture: the decoder really receives them.
    assert not np.array_equal(g.generate(5, seed=11, labels=0), g.generate(5, seed=11, labels=1))
    x = (model.decode(z, labels) > 0.5).astype(np.float32)  # Bernoulli: binary pixels
    loc = g.encode(x, labels)["loc"]
    np.testing.assert_allclose(loc, model.encode(x, labels)[0], atol=1e-4)
    with pytest.raises(ValueError, match="needs the images' labels"):
        g.encode(x)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        g.generate(2, labels=[0, 3])


def test_unconditional_bundle_refuses_labels(vae_bundle):
    g = keras_aigc_runtime.load(vae_bundle[1])
    with pytest.raises(ValueError, match="no input with role 'label'"):
        g.generate(2, labels=[0, 1])


def test_bad_inputs_raise_value_errors_naming_them(dcgan_bundle):
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    z = np.zeros((2, 8), np.float32)
    cases = [
        ({"x": z}, r"takes inputs \['z'\].*unknown: \['x'\]"),
        ({}, r"missing: \['z'\]"),
        ({"z": z.astype(np.int32)}, r"'z' must hold floats"),
        ({"z": np.zeros((2, 7), np.float32)}, r"'z' must have shape \[-1, 8\].*got \[2, 7\]"),
        ({"z": np.zeros((0, 8), np.float32)}, r"empty batch"),
        ({"z": np.full((2, 8), np.nan, np.float32)}, r"NaN or Inf"),
        ({"z": np.full((2, 8), np.inf, np.float32)}, r"NaN or Inf"),
    ]
    for inputs, match in cases:
        with pytest.raises(ValueError, match=match):
            g.run(inputs)
    with pytest.raises(ValueError, match=r"labels are only for conditional models"):
        g.generate(2, labels=1)
    with pytest.raises(ValueError, match=r"n must be a positive int, got n=0"):
        g.generate(0)
    with pytest.raises(ValueError, match=r"Unknown signature='encode'"):
        g.run({"z": z}, signature="encode")
    with pytest.raises(ValueError, match=r"decode\(\) needs a VAE bundle"):
        g.decode(z)


def test_load_argument_errors(dcgan_bundle, fixed_batch_bundle, tmp_path):
    bundle = dcgan_bundle[1]
    with pytest.raises(ValueError, match=r"Unrecognized backend='torch'.*\['onnx', 'tflite'\]"):
        keras_aigc_runtime.load(bundle, backend="torch")
    with pytest.raises(ValueError, match=r"Unrecognized variant='int4'"):
        keras_aigc_runtime.load(bundle, backend="tflite", variant="int4")
    with pytest.raises(ValueError, match=r"no onnx file for backend='onnx'.*formats in the bundle"):
        keras_aigc_runtime.load(fixed_batch_bundle[1], backend="onnx")
    with pytest.raises(FileNotFoundError, match=r"is not a directory"):
        keras_aigc_runtime.load(str(tmp_path / "nope"))
    # verify="used" checks the files it loads; verify="all" every listed file.
    copy = str(tmp_path / "copy")
    shutil.copytree(bundle, copy)
    with open(os.path.join(copy, "model_int8.tflite"), "ab") as f:
        f.write(b"\0")
    keras_aigc_runtime.load(copy, backend="onnx")
    with pytest.raises(ValueError, match=r"sha256 of 'model_int8.tflite'"):
        keras_aigc_runtime.load(copy, backend="onnx", verify="all")
    with pytest.raises(ValueError, match=r"sha256 of 'model_int8.tflite'"):
        keras_aigc_runtime.load(copy, backend="tflite", variant="int8")


def test_onnx_providers_are_reported(dcgan_bundle):
    g = keras_aigc_runtime.load(dcgan_bundle[1], num_threads=1)
    runner = g._runners["generate"].dynamic[2]
    assert runner.providers == runner.session.get_providers()
    assert runner.providers[-1] == "CPUExecutionProvider"


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_vae_decode_and_encode_match_keras(vae_bundle, backend):
    model, bundle = vae_bundle
    g = keras_aigc_runtime.load(bundle, backend=backend)
    assert g.signatures == ["decode", "encode"] and g.primary == "decode"
    rng = np.random.default_rng()
    z = rng.standard_normal((5, 3)).astype(np.float32)
    mean = np.asarray(model.decoder_mean_model()(z, training=False))
    atol = _tolerance(bundle, "model.onnx" if backend == "onnx" else "model.tflite")[
        "max_abs_error"]
    np.testing.assert_allclose(g.run({"z": z}, "decode")["image"], mean, rtol=0, atol=atol)
    # uint8 pixels of the [0, 1] mean image (value_range from the manifest); an image
    # value within atol of a rounding boundary may round either way.
    np.testing.assert_allclose(g.decode(z), np.round(mean * 255), atol=1)
    x = rng.uniform(0, 1, (4, 8, 8, 1)).astype(np.float32)
    loc, scale = (np.asarray(t) for t in model.encoder_model()(x, training=False))
    out = g.encode(x)
    np.testing.assert_allclose(out["loc"], loc, rtol=0, atol=atol)
    np.testing.assert_allclose(out["scale"], scale, rtol=0, atol=atol)
    pixels = (x * 255).round().astype(np.uint8)  # uint8 input maps back to [0, 1]
    loc_u8 = np.asarray(
        model.encoder_model()(pixels.astype(np.float32) / 255, training=False)[0])
    np.testing.assert_allclose(g.encode(pixels)["loc"], loc_u8, rtol=0, atol=atol)
    assert g.generate(2, seed=0).shape == (2, 8, 8, 1)  # generate = decode of prior draws
    with pytest.raises(ValueError, match=r"'image' must have shape \[-1, 8, 8, 1\]"):
        g.encode(np.zeros((2, 8, 8, 3), np.float32))


def test_variant_can_name_one_file(vae_bundle):
    model, bundle = vae_bundle
    g = keras_aigc_runtime.load(bundle, variant="encode.onnx")
    assert g.files == ["encode.onnx"] and g.signatures == ["encode"]
    x = np.random.default_rng().uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(g.encode(x)["loc"], np.asarray(model.encoder(x)[0]), rtol=0,
                               atol=_tolerance(bundle, "encode.onnx")["max_abs_error"])
    with pytest.raises(ValueError, match=r"generate\(\) needs a 'generate' or 'decode'"):
        g.generate(1)
