"""ConvTranspose -> Conv + DepthToSpace + Slice: same outputs as ORT's ConvTranspose."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from keras_aigc.export import onnx as onnx_lib
from keras_aigc.export.export_utils import export_spec
from tests.export.export_helpers import tiny_dcgan


def conv_transpose_model(c_in, c_out, k, s, pads, size, bias, out_pad=0):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((c_in, c_out, k, k)).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    inputs = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c_out).astype(np.float32), "b"))
        inputs.append("b")
    attrs = {"kernel_shape": [k, k], "strides": [s, s], "pads": pads}
    if out_pad:
        attrs["output_padding"] = [out_pad, out_pad]
    node = helper.make_node("ConvTranspose", inputs, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                    ["n", c_in, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", c_out, "h", "w"])],
        inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), w


def run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def numpy_conv_transpose(x, w, s, pads):
    """The definition: y[o] += x[i] * w[t] where o = i*s + t - pad_begin."""
    n, c_in, h, _ = x.shape
    k = w.shape[2]
    full = np.zeros((n, w.shape[1], (h - 1) * s + k, (h - 1) * s + k), np.float64)
    for i in range(h):
        for j in range(h):
            full[:, :, i * s:i * s + k, j * s:j * s + k] += np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w)
    return full[:, :, pads[0]:full.shape[2] - pads[2], pads[1]:full.shape[3] - pads[3]]


@pytest.mark.parametrize("k, s, pads, bias, out_pad", [
    (5, 2, [1, 1, 2, 2], False, 0),  # TF "same", the DCGAN upsampler
    (5, 1, [2, 2, 2, 2], False, 0),  # stride 1 "same"
    (4, 2, [1, 1, 1, 1], True, 0),   # even kernel
    (3, 2, [0, 0, 0, 0], True, 0),   # "valid"
    (3, 3, [1, 1, 1, 1], False, 0),  # stride 3
    (3, 2, [1, 1, 1, 1], True, 1),   # output_padding
    (2, 2, [0, 0, 0, 0], False, 0),  # k == s
])
def test_rewrite_equals_conv_transpose(k, s, pads, bias, out_pad):
    model, w = conv_transpose_model(3, 4, k, s, pads, 5, bias, out_pad)
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 5)).astype(np.float32)
    want = run(model, x)
    assert onnx_lib.conv_transpose_as_conv(model) == 1
    ops = [n.op_type for n in model.graph.node]
    assert "ConvTranspose" not in ops and "Conv" in ops
    got = run(model, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)
    if not bias and not out_pad:  # against the definition too, not only ORT
        np.testing.assert_allclose(got, numpy_conv_transpose(x, w, s, pads), atol=1e-4)


def test_unsupported_nodes_are_left_alone():
    model, _ = conv_transpose_model(3, 4, 3, 2, [1, 1, 1, 1], 5, False)
    model.graph.node[0].attribute.append(helper.make_attribute("dilations", [2, 2]))
    assert onnx_lib.conv_transpose_as_conv(model) == 0
    assert [n.op_type for n in model.graph.node] == ["ConvTranspose"]


def test_exported_generator_has_no_conv_transpose(tmp_path):
    spec = export_spec(tiny_dcgan())
    sig = spec.signature("generate")
    plain, fast = str(tmp_path / "plain.onnx"), str(tmp_path / "fast.onnx")
    onnx_lib.export_onnx(sig, plain, optimize=False)
    onnx_lib.export_onnx(sig, fast)
    assert "ConvTranspose" in {n.op_type for n in onnx.load(plain).graph.node}
    assert "ConvTranspose" not in {n.op_type for n in onnx.load(fast).graph.node}
    assert onnx_lib.batch_is_dynamic(fast)
    z = np.random.default_rng(2).standard_normal((3, sig.inputs[0].shape[-1])).astype(np.float32)
    a = onnx_lib.file_runner(plain, sig)([z])
    b = onnx_lib.file_runner(fast, sig)([z])
    np.testing.assert_allclose(b["image"], a["image"], atol=1e-5)
