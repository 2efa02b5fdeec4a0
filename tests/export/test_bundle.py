import hashlib
import json
import os

import keras
import numpy as np
import pytest

from keras_aigc.export import default_formats, export_bundle, load_manifest, validate_manifest
from keras_aigc.export.bundle import SCHEMA_PATH
from keras_aigc.models import DCGAN, GAN, PixelCNN, ResNetVAE
from tests.export.export_helpers import (
    LATENT_DIM,
    NUM_CLASSES,
    LGamma,
    Roll,
    fresh_inputs,
    gan_with_unsupported_op,
    run_onnx,
    run_saved_model,
    run_tflite,
    tiny_dcgan,
)

FAMILIES = ["dcgan", "cgan", "vae", "cvae"]


def _psnr(ref, got, peak):
    return 10 * np.log10(peak**2 / np.mean((ref.astype(np.float64) - got) ** 2))


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_every_file_matches_keras_on_fresh_inputs(exported, family):
    model, bundle, manifest = exported(family)
    low, high = manifest["output"]["value_range"]
    checked = set()
    peaks = {}  # PSNR peak of non-image outputs: their spread over 256 prior draws
    for name in manifest["signatures"]:
        spec, inputs = fresh_inputs(model, name, 256)
        for out, v in spec.keras_outputs(spec.signature(name), inputs).items():
            peaks[name, out] = float(np.ptp(v))
    for entry in manifest["files"]:
        if entry["format"] == "triton":
            continue
        path = os.path.join(bundle, entry["path"])
        for fsig in entry["signatures"]:
            names = [t["name"] for t in fsig["inputs"]]
            # Fixed-batch files (the default serving sizes) run at their own batch only.
            sizes = (1, 7) if fsig["batch_size"] == -1 else (fsig["batch_size"],)
            for n in sizes:
                spec, inputs = fresh_inputs(model, fsig["name"], n)
                sig = spec.signature(fsig["name"])
                ref = spec.keras_outputs(sig, inputs)
                if entry["format"] == "saved_model":
                    got = run_saved_model(path, fsig["key"], names, inputs)
                elif entry["format"] == "onnx":
                    got = run_onnx(path, names, inputs)
                else:
                    got = run_tflite(path, fsig["key"], names, inputs)
                for out in sig.outputs:
                    r, g = ref[out.name], np.asarray(got[out.name], np.float32)
                    assert g.shape == r.shape == (n,) + out.shape[1:]
                    err = np.abs(r - g).max()
                    q = entry["quantization"]
                    if q == "none":
                        assert err <= 1e-4, (entry["path"], n, err)
                    elif q == "float16":
                        assert err <= 1e-2, (entry["path"], n, err)
                    else:
                        peak = high - low if out.role == "image" else peaks[sig.name, out.name]
                        assert _psnr(r, g, peak) >= 25.0, (entry["path"], n)
                checked.add((entry["format"], entry["quantization"], fsig["name"]))
    signatures = list(manifest["signatures"])
    expected = {(f, q, s) for s in signatures for f, q in
                [("saved_model", "none"), ("onnx", "none"), ("tflite", "none"),
                 ("tflite", "float16"), ("tflite", "dynamic_int8"), ("tflite", "int8")]
                if not (family == "cvae" and q == "int8")}  # see conftest.exported
    assert checked == expected


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_manifest_validates_and_records_parity(exported, family):
    model, bundle, manifest = exported(family)
    with open(os.path.join(bundle, "manifest.json")) as f:
        on_disk = json.load(f)
    assert on_disk == load_manifest(bundle)
    import jsonschema

    with open(SCHEMA_PATH) as f:
        jsonschema.validate(on_disk, json.load(f), cls=jsonschema.Draft202012Validator)
    for entry in on_disk["files"]:
        sizes = {p["batch_size"] for p in entry["parity"]}
        fixed = entry["signatures"][0]["batch_size"]  # -1: dynamic batch
        assert sizes == ({1, 7} if fixed == -1 else {fixed}), entry["path"]
        assert all(p["passed"] for p in entry["parity"])
        if entry["quantization"] in ("int8", "dynamic_int8"):
            assert all(p["psnr_db"] is None or p["psnr_db"] >= 25.0 for p in entry["parity"])
        if entry["quantization"] == "int8":
            for t in entry["signatures"][0]["inputs"] + entry["signatures"][0]["outputs"]:
                if t["role"] != "label":
                    assert t["dtype"] == "int8" and t["quantization"]["scale"] > 0
    expected_family = {"dcgan": "gan", "cgan": "conditional_gan", "vae": "vae",
                       "cvae": "vae"}[family]
    assert on_disk["model"]["family"] == expected_family
    assert on_disk["latent"]["dim"] == LATENT_DIM
    assert on_disk["num_classes"] == (NUM_CLASSES if family in ("cgan", "cvae") else None)
    for sig in on_disk["signatures"].values():
        for t in sig["inputs"] + sig["outputs"]:
            assert t["shape"][0] == -1
    assert on_disk["tools"]["onnx_opset"] >= 17
    assert set(on_disk["signatures"]) == ({"decode", "encode"} if family in ("vae", "cvae")
                                          else {"generate"})
    if family == "cvae":
        encode = on_disk["signatures"]["encode"]
        assert [t["role"] for t in encode["inputs"]] == ["image", "label"]
        # Full-covariance posterior: the scale output is the (d, d) Cholesky factor.
        assert encode["outputs"][1]["shape"] == [-1, LATENT_DIM, LATENT_DIM]
    if family == "cgan":
        labels = on_disk["signatures"]["generate"]["inputs"][1]
        assert labels == {"name": "labels", "role": "label", "dtype": "int32", "shape": [-1]}


def _tree_sha256(path):
    # The rule documented in MANIFEST.md, written out independently of the exporter.
    lines = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            lines.append(f"{digest} {os.path.relpath(full, path).replace(os.sep, '/')}\n")
    return hashlib.sha256("".join(sorted(lines, key=lambda s: s.split(" ", 1)[1]))
                          .encode()).hexdigest()


@pytest.mark.slow
def test_sha256_of_every_file_matches(exported, tmp_path):
    _, bundle, manifest = exported("dcgan")
    for entry in manifest["files"]:
        path = os.path.join(bundle, entry["path"])
        if os.path.isdir(path):
            assert entry["sha256"] == _tree_sha256(path)
        else:
            with open(path, "rb") as f:
                assert entry["sha256"] == hashlib.sha256(f.read()).hexdigest()
    # A modified file is caught on load.
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    with open(copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="model.onnx"):
        load_manifest(str(copy))


@pytest.mark.slow
def test_triton_repository_follows_manifest(exported):
    _, bundle, manifest = exported("cgan")
    entry = next(f for f in manifest["files"] if f["format"] == "triton")
    onnx_entry = next(f for f in manifest["files"] if f["format"] == "onnx")
    (sig,) = entry["signatures"]
    model_dir = os.path.join(bundle, "triton", sig["key"])
    assert sig["key"] == f"{manifest['name']}_generate"
    with open(os.path.join(model_dir, "1", "model.onnx"), "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == onnx_entry["sha256"]
    with open(os.path.join(model_dir, "config.pbtxt")) as f:
        config = f.read()
    assert f'name: "{sig["key"]}"' in config
    assert 'platform: "onnxruntime_onnx"' in config
    assert f"max_batch_size: {entry['max_batch_size']}" in config
    assert f"dims: [ {LATENT_DIM} ]" in config
    assert "dims: [ 8, 8, 1 ]" in config
    assert "reshape: { shape: [ ] }" in config  # the per-example scalar label


def test_serving_batch_sizes_add_fixed_files_next_to_the_dynamic_one(tmp_path):
    manifest = export_bundle(tiny_dcgan(), str(tmp_path / "b"), formats=("tflite",),
                             serving_batch_sizes=(3,))
    sizes = {f["path"]: f["signatures"][0]["batch_size"] for f in manifest["files"]}
    assert sizes == {"model.tflite": -1, "model_b3.tflite": 3}
    manifest = export_bundle(tiny_dcgan(), str(tmp_path / "c"), formats=("tflite",),
                             serving_batch_sizes=())
    assert [f["path"] for f in manifest["files"]] == ["model.tflite"]


@pytest.mark.slow
def test_fixed_batch_tflite_is_correct_at_claimed_batch(tmp_path):
    model = tiny_dcgan()
    manifest = export_bundle(model, str(tmp_path / "b"), formats=("tflite",),
                             quantize=("int8",), batch_sizes=(2, 5))
    paths = sorted(f["path"] for f in manifest["files"])
    assert paths == ["model_b2.tflite", "model_b5.tflite", "model_int8_b2.tflite",
                     "model_int8_b5.tflite"]
    for entry in manifest["files"]:
        (fsig,) = entry["signatures"]
        n = fsig["batch_size"]
        assert fsig["inputs"][0]["shape"] == [n, LATENT_DIM]
        assert {p["batch_size"] for p in entry["parity"]} == {n}
        spec, inputs = fresh_inputs(model, "generate", n)
        ref = spec.keras_outputs(spec.signature("generate"), inputs)["image"]
        got = run_tflite(str(tmp_path / "b" / entry["path"]), fsig["key"], ["z"], inputs)
        if entry["quantization"] == "none":
            np.testing.assert_allclose(got["image"], ref, atol=1e-4)
        else:
            assert _psnr(ref, got["image"], 2.0) >= 25.0


def test_failed_conversion_leaves_no_directory(tmp_path):
    model = gan_with_unsupported_op(Roll)
    with pytest.raises(ValueError, match="TFLite conversion of signature 'generate'.*Roll"):
        export_bundle(model, str(tmp_path / "bundle"), formats=("saved_model", "tflite"))
    assert os.listdir(tmp_path) == []


def test_failed_parity_leaves_no_directory(tmp_path):
    model = gan_with_unsupported_op(LGamma)
    # The converter emits a TFLite model for lgamma, but it computes an empty output:
    # the parity check, not the converter, catches it, after the SavedModel was written.
    with pytest.raises(ValueError, match="TFLite file model.tflite does not match"):
        export_bundle(model, str(tmp_path / "bundle"), formats=("saved_model", "tflite"))
    assert os.listdir(tmp_path) == []


def test_existing_output_needs_overwrite(tmp_path):
    model = tiny_dcgan()
    out = str(tmp_path / "bundle")
    first = export_bundle(model, out, formats=("onnx",))
    with pytest.raises(ValueError, match="already exists.*overwrite=True"):
        export_bundle(model, out, formats=("onnx",))
    second = export_bundle(model, out, formats=("onnx",), overwrite=True)
    assert load_manifest(out) == second
    assert first["files"][0]["path"] == second["files"][0]["path"] == "model.onnx"
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_overwrite_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="not an export bundle"):
        export_bundle(tiny_dcgan(), str(tmp_path), formats=("onnx",), overwrite=True)
    assert (tmp_path / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("kwargs, match", [
    ({"formats": ("onnx", "coreml")},
     r"Unrecognized formats 'coreml'.*\['saved_model', 'tflite', 'onnx', 'triton'\]"),
    ({"formats": ()}, "formats is empty"),
    ({"quantize": ("int4",)},
     r"Unrecognized quantize 'int4'.*\['float16', 'dynamic_int8', 'int8'\]"),
    ({"formats": ("onnx",), "quantize": ("int8",)}, "has no 'tflite'"),
    ({"batch_sizes": (0, 4)}, r"batch_sizes must be.*\(0, 4\)"),
    ({"batch_sizes": 2.5}, "batch_sizes must be"),
    ({"serving_batch_sizes": (1, -2)}, r"serving_batch_sizes must be.*\(1, -2\)"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_bundle(tiny_dcgan(), str(tmp_path / "b"), **kwargs)
    assert os.listdir(tmp_path) == []


def test_missing_parent_directories_are_created(tmp_path):
    manifest = export_bundle(tiny_dcgan(), str(tmp_path / "a" / "b" / "c"), formats=("onnx",))
    assert os.path.isfile(tmp_path / "a" / "b" / "c" / "manifest.json")
    assert [f["path"] for f in manifest["files"]] == ["model.onnx"]
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        export_bundle(tiny_dcgan(), str(tmp_path / "file" / "b"))


def test_rejects_models_that_are_not_keras_aigc(tmp_path):
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="GenerativeModel.*Sequential"):
        export_bundle(plain, str(tmp_path / "b"))


def test_builds_unbuilt_models_itself(tmp_path):
    """An unbuilt model is built by the exporter (GenerativeModel.build ->
    build_networks), from its own shapes, instead of failing."""
    gan = GAN(keras.Sequential([keras.layers.Dense(16, activation="tanh"),
                                keras.layers.Reshape((4, 4, 1))]),
              keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(1)]), latent_dim=3)
    assert not gan.built and not gan.generator.built
    manifest = export_bundle(gan, str(tmp_path / "b"), formats=("onnx",), seed=0)
    assert gan.built and gan.generator.built and gan.discriminator.built
    assert manifest["output"]["image_shape"] == [4, 4, 1]
    assert all(p["passed"] for f in manifest["files"] for p in f["parity"])


def test_invalid_manifest_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="schema_version"):
        validate_manifest({"schema_version": 99})
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_manifest(str(tmp_path))


# ----------------------------------------------------- formats each model declares
class OnnxOnlyDCGAN(DCGAN):
    """A family that declares ONNX only (defined here: no library change needed)."""

    export_formats = ("onnx",)
    export_format_notes = {"tflite": "a test family without a TFLite path",
                           "saved_model": "a test family without a SavedModel path"}


def tiny_pixel_cnn():
    return PixelCNN((2, 2, 1), filters=4, num_layers=1, first_kernel_size=3)


def test_default_formats_come_from_the_model():
    assert default_formats(tiny_dcgan()) == ("saved_model", "tflite", "onnx")  # not triton
    assert "triton" in tiny_dcgan().export_formats
    onnx_only = OnnxOnlyDCGAN(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, g_filters=(8, 8, 4),
                              d_filters=(4,), kernel_size=3)
    assert default_formats(onnx_only) == ("onnx",)
    vae = ResNetVAE(image_shape=(8, 8, 3), latent_dim=2, channels=(2, 2), seed=1)
    assert default_formats(vae) == ("saved_model", "onnx")  # TFLite: fixed batches only
    assert default_formats(vae, batch_sizes=(4,)) == ("saved_model", "tflite", "onnx")
    assert default_formats(tiny_pixel_cnn()) == ("saved_model", "tflite", "onnx")


@pytest.mark.parametrize("make,formats,match", [
    (tiny_pixel_cnn, ("triton",), r"PixelCNN cannot be exported to format 'triton': "
                                  r"Triton's configuration for the ONNX Loop sampler .*"
                                  r"Formats PixelCNN supports: "
                                  r"\['saved_model', 'tflite', 'onnx'\]"),
    (lambda: ResNetVAE(image_shape=(8, 8, 3), latent_dim=2, channels=(2, 2), seed=1),
     ("saved_model", "tflite"), r"ResNetVAE cannot be exported to format 'tflite' with a "
                                r"dynamic batch: .*Select-TF \(Flex\) Conv2D.*Pass fixed "
                                r"batch sizes"),
    (lambda: OnnxOnlyDCGAN(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, g_filters=(8, 8, 4),
                           d_filters=(4,), kernel_size=3),
     ("tflite",), "OnnxOnlyDCGAN cannot be exported to format 'tflite': a test family"),
    (lambda: OnnxOnlyDCGAN(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, g_filters=(8, 8, 4),
                           d_filters=(4,), kernel_size=3),
     ("saved_model",), "OnnxOnlyDCGAN cannot be exported to format 'saved_model'"),
])
def test_unsupported_formats_are_refused_before_anything_is_written(tmp_path, make, formats,
                                                                    match):
    out = tmp_path / "parent" / "bundle"
    with pytest.raises(ValueError, match=match):
        export_bundle(make(), str(out), formats=formats)
    assert os.listdir(tmp_path) == []  # no bundle, no parent, no temporary directory


@pytest.mark.parametrize("kwargs", [{"quantize": ("int8",)},
                                    {"formats": ("tflite",), "quantize": ("float16",)},
                                    {"quantize": ("dynamic_int8", "int8")}])
def test_quantized_pixel_cnn_variants_are_refused_before_anything_is_written(tmp_path, kwargs):
    out = tmp_path / "parent" / "bundle"
    with pytest.raises(ValueError, match=r"PixelCNN cannot be exported with quantized variants "
                                         r".*thresholds each pixel's CDF.*Export it without "
                                         r"quantize/onnx_quantize"):
        export_bundle(tiny_pixel_cnn(), str(out), **kwargs)
    assert os.listdir(tmp_path) == []


def test_formats_none_writes_the_models_own_formats(tmp_path):
    onnx_only = OnnxOnlyDCGAN(image_shape=(8, 8, 1), latent_dim=LATENT_DIM, g_filters=(8, 8, 4),
                              d_filters=(4,), kernel_size=3)
    manifest = export_bundle(onnx_only, str(tmp_path / "b"), seed=0)
    assert [f["format"] for f in manifest["files"]] == ["onnx"]
    assert all(p["passed"] for f in manifest["files"] for p in f["parity"])
