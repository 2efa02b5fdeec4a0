"""ONNX int8 / float16 variants of export bundles (`export_bundle(onnx_quantize=...)`)."""

import sys

import keras
import numpy as np
import onnx
import pytest

import keras_aigc_runtime
from keras_aigc import data
from keras_aigc.export import ONNX_QUANTIZATIONS, check_onnx_quantize, export_bundle, export_spec
from keras_aigc.export import onnx as onnx_lib
from keras_aigc.export import verify as verify_lib
from tests.export.export_helpers import NUM_CLASSES, tiny_cgan, tiny_dcgan


def trained_tiny_dcgan():
    """The tiny DCGAN after 40 steps on the 8x8 digits: weights and batch-norm statistics
    away from their initial values, as in a model someone exports."""
    keras.utils.set_random_seed(0)
    model = tiny_dcgan()
    model.compile()
    ds = data.load("digits", batch_size=32, image_size=(8, 8), drop_remainder=True)
    model.fit(ds.repeat(), steps_per_epoch=40, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def quantized_bundle(tmp_path_factory):
    model = trained_tiny_dcgan()
    out = tmp_path_factory.mktemp("onnxq") / "bundle"
    manifest = export_bundle(model, str(out), formats=("onnx", "triton"),
                             onnx_quantize=ONNX_QUANTIZATIONS, seed=0)
    return model, str(out), manifest


@pytest.mark.slow  # the module's bundle: 40 training steps, 4 ONNX files, Triton
def test_manifest_lists_every_onnx_variant_with_passed_parity(quantized_bundle):
    _, out, manifest = quantized_bundle
    onnx_files = {f["path"]: f for f in manifest["files"] if f["format"] == "onnx"}
    assert sorted(onnx_files) == ["model.onnx", "model_dynamic_int8.onnx", "model_float16.onnx",
                                  "model_int8.onnx"]
    for quant in ("none",) + ONNX_QUANTIZATIONS:
        entry = onnx_files[onnx_lib.file_name("model", quant)]
        assert entry["quantization"] == quant
        assert entry["parity"] and all(r["passed"] for r in entry["parity"])
        assert entry["parity"][0]["tolerance"] == verify_lib.TOLERANCES[quant]
        # float32 in, float32 out: callers feed the same latents to every variant.
        (sig,) = entry["signatures"]
        assert [t["dtype"] for t in sig["inputs"] + sig["outputs"]] == ["float32", "float32"]
        assert sig["batch_size"] == -1
    # Triton serves the float32 file only.
    triton = next(f for f in manifest["files"] if f["format"] == "triton")
    assert [s["key"] for s in triton["signatures"]] == ["tiny_dcgan_generate"]


@pytest.mark.slow
def test_int8_file_is_really_quantized(quantized_bundle):
    _, out, _ = quantized_bundle
    ops = {n.op_type for n in onnx.load(f"{out}/model_int8.onnx").graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    dyn = {n.op_type for n in onnx.load(f"{out}/model_dynamic_int8.onnx").graph.node}
    assert dyn & {"MatMulInteger", "DynamicQuantizeLinear", "DynamicQuantizeMatMul"}
    f16 = onnx.load(f"{out}/model_float16.onnx")
    weights = [t for t in f16.graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ONNX_QUANTIZATIONS)
def test_runtime_loads_variant_and_matches_keras_on_fresh_latents(quantized_bundle, variant):
    model, out, _ = quantized_bundle
    g = keras_aigc_runtime.load(out, backend="onnx", variant=variant)
    assert g.variant == variant
    z = np.random.default_rng().standard_normal((16, model.latent_dim)).astype(np.float32)
    got = g.run({"z": z}, "generate")["image"]
    ref = np.asarray(model.generate_from_latents(z))
    low, high = model.value_range
    if variant == "float16":
        assert np.max(np.abs(got - ref)) <= 1e-2
    else:
        assert verify_lib.psnr(ref, got, high - low) >= 25.0
    # A quantized file is not the float32 one.
    assert np.max(np.abs(got - ref)) > 0


def test_float16_conditional_generator_loads_in_onnxruntime(tmp_path):
    # microsoft/onnxconverter-common#320: the converter retypes a Cast(to=float)'s output
    # as float16 without changing `to`; the label path of ConditionalGAN has such a Cast
    # and ORT refused the file before the workaround in onnx_lib.quantize.
    model = tiny_cgan()
    spec = export_spec(model)
    sig = spec.signature("generate")
    src, dst = str(tmp_path / "m.onnx"), str(tmp_path / "m_float16.onnx")
    onnx_lib.export_onnx(sig, src)
    onnx_lib.quantize(src, dst, "float16")
    run = onnx_lib.file_runner(dst, sig)
    rng = np.random.default_rng()
    z = rng.standard_normal((5, model.latent_dim)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, 5).astype(np.int32)
    got = run([z, labels])["image"]
    ref = model.generate_from_latents(z, labels=labels)
    assert np.max(np.abs(got - np.asarray(ref))) <= 1e-2


def test_unknown_onnx_quantization_is_rejected():
    with pytest.raises(ValueError, match=r"Unrecognized onnx_quantize 'int4'.*"
                                         r"\['float16', 'dynamic_int8', 'int8'\]"):
        check_onnx_quantize(("int4",), ("onnx",))


def test_onnx_quantize_without_onnx_format_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"onnx_quantize=\('int8',\) applies to ONNX files.*"
                                         r"has no 'onnx'"):
        export_bundle(tiny_dcgan(), str(tmp_path / "b"), formats=("tflite",),
                      onnx_quantize=("int8",))
    assert not (tmp_path / "b").exists()


def test_static_int8_needs_calibration(tmp_path):
    with pytest.raises(ValueError, match="int8' needs calibration inputs"):
        onnx_lib.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), "int8")


def test_unknown_quantization_in_quantize_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"Unrecognized ONNX quantization='uint4'"):
        onnx_lib.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), "uint4")


def test_float16_without_onnxconverter_common_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxconverter_common", None)
    with pytest.raises(ImportError, match=r"pip install \"keras-aigc\[onnx-fp16\]\""):
        onnx_lib.quantize(str(tmp_path / "m.onnx"), str(tmp_path / "q.onnx"), "float16")
