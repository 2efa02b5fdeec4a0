"""Open Inference Protocol decoding/encoding on hand-built bodies."""

import json

import numpy as np
import pytest

from keras_aigc_runtime.server.protocol import (
    ProtocolError,
    decode_body,
    encode_infer_response,
    parse_infer_request,
)


def test_mixed_json_and_binary_inputs_in_order():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, -1], np.int32)
    header = json.dumps({"inputs": [
        {"name": "a", "datatype": "FP32", "shape": [2, 3], "parameters": {"binary_data_size": 24}},
        {"name": "c", "datatype": "INT64", "shape": [1, 2], "data": [[1, 2]]},
        {"name": "b", "datatype": "INT32", "shape": [2], "parameters": {"binary_data_size": 8}},
    ], "outputs": [{"name": "y", "parameters": {"binary_data": True}}, {"name": "x"}]}).encode()
    req, arrays, (requested, binary) = parse_infer_request(
        header + a.tobytes() + b.tobytes(), str(len(header)))
    np.testing.assert_array_equal(arrays["a"], a)
    np.testing.assert_array_equal(arrays["b"], b)
    assert arrays["c"].dtype == np.int64 and arrays["c"].tolist() == [[1, 2]]
    assert requested == ["y", "x"] and binary == {"y"}


def test_binary_data_output_default_and_response_layout():
    _, _, (requested, binary) = parse_infer_request(json.dumps(
        {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}],
         "parameters": {"binary_data_output": True}}).encode())
    assert requested is None and binary is None
    out = {"x": np.array([[1.5, 2.0]], np.float32), "y": np.array([3], np.int32)}
    body, headers = encode_infer_response("m", "id7", out, None, None)
    hl = int(headers["Inference-Header-Content-Length"])
    head = json.loads(body[:hl])
    assert head["id"] == "id7" and [o["parameters"]["binary_data_size"]
                                    for o in head["outputs"]] == [8, 4]
    np.testing.assert_array_equal(np.frombuffer(body[hl:hl + 8], np.float32), [1.5, 2.0])
    body, headers = encode_infer_response("m", None, out, ["y"], set())
    assert "Inference-Header-Content-Length" not in headers
    assert json.loads(body)["outputs"] == [{"name": "y", "datatype": "INT32", "shape": [1],
                                            "data": [3]}]


@pytest.mark.parametrize("body,header_length,match", [
    (b"{", None, r"Malformed JSON"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [-1], "data": []}]}', None,
     r"'shape' must be a list of non-negative ints"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1]}]}', None,
     r"neither 'data' nor binary_data_size"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}, '
     b'{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]}', None, r"given twice"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]}', "x",
     r"must be an int, got 'x'"),
    (b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]}xx', "0",
     r"does not fit the body"),
])
def test_malformed_requests(body, header_length, match):
    with pytest.raises(ProtocolError, match=match) as e:
        parse_infer_request(body, header_length)
    assert e.value.status == 400


def test_content_encoding():
    import gzip
    import zlib

    assert decode_body(gzip.compress(b"abc"), "gzip", 10) == b"abc"
    assert decode_body(zlib.compress(b"abc"), "deflate", 10) == b"abc"
    with pytest.raises(ProtocolError, match=r"Unsupported Content-Encoding 'br'") as e:
        decode_body(b"", "br", 10)
    assert e.value.status == 415
    with pytest.raises(ProtocolError, match=r"not valid gzip data"):
        decode_body(b"nope", "gzip", 10)
