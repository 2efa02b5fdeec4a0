import numpy as np
import onnx
import pytest

from keras_aigc.export import export_spec
from keras_aigc.export import onnx as onnx_lib
from tests.export.export_helpers import LATENT_DIM, NUM_CLASSES, run_onnx, tiny_cgan, tiny_dcgan


@pytest.mark.parametrize("factory", [tiny_dcgan, tiny_cgan])
def test_onnx_has_dynamic_batch_and_matches_keras(factory, tmp_path):
    model = factory()
    spec = export_spec(model)
    sig = spec.signature("generate")
    path = str(tmp_path / "m.onnx")
    onnx_lib.export_onnx(sig, path)
    graph = onnx.load(path).graph
    assert onnx_lib.batch_is_dynamic(path)
    assert all(t.type.tensor_type.shape.dim[0].dim_param for t in graph.input)
    assert onnx_lib.opset_of(path) >= 17
    assert [t.name for t in graph.input] == [t.name for t in sig.inputs]
    assert [t.name for t in graph.output] == ["image"]
    rng = np.random.default_rng()
    for n in (1, 7, 13):
        inputs = [rng.standard_normal((n, LATENT_DIM)).astype(np.float32)]
        if len(sig.inputs) == 2:
            inputs.append(rng.integers(0, NUM_CLASSES, n).astype(np.int32))
        got = run_onnx(path, [t.name for t in sig.inputs], inputs)["image"]
        labels = inputs[1] if len(inputs) == 2 else None
        ref = model.generate_from_latents(inputs[0], labels=labels)
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_fixed_batch_onnx_is_detected(tmp_path):
    spec = export_spec(tiny_dcgan())
    path = str(tmp_path / "m.onnx")
    onnx_lib.export_onnx(spec.signature("generate"), path)
    model = onnx.load(path)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 4
    onnx.save(model, path)
    assert not onnx_lib.batch_is_dynamic(path)


def test_opset_below_17_is_rejected(tmp_path):
    spec = export_spec(tiny_dcgan())
    with pytest.raises(ValueError, match="opset must be >= 17, got opset=13"):
        onnx_lib.export_onnx(spec.signature("generate"), str(tmp_path / "m.onnx"), opset=13)
