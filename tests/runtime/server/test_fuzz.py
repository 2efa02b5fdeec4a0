"""Property-based fuzzing of the infer and PNG routes (hypothesis), in process.

Every response is a 4xx, or a 200 for a valid request: never a 5xx, never a hang.
After the fuzzing a valid request still gets the right answer.
"""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_aigc_runtime
from keras_aigc_runtime.server import ServerConfig, create_app
from tests.runtime.server.asgi_client import AsgiClient

URL = "/v2/models/dcgan/infer"
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def fuzz_client(dcgan_bundle):
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    app = create_app(g, ServerConfig(max_request_batch=8, max_body_bytes=1 << 20,
                                     parse_workers=0, request_timeout_s=30))
    with AsgiClient(app) as c:
        c.generator = g
        yield c
        # A valid request still succeeds after all the fuzzing, with the right answer.
        z = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
        status, _, body = c.request("POST", URL, json.dumps({"inputs": [
            {"name": "z", "datatype": "FP32", "shape": [2, 8],
             "data": z.ravel().tolist()}]}).encode())
        assert status == 200, body
        np.testing.assert_array_equal(
            np.asarray(json.loads(body)["outputs"][0]["data"], np.float32).reshape(2, 8, 8, 1),
            g.run({"z": z})["image"])
        assert 'status="5' not in app.state.metrics.render()


def _check(status, body):
    assert status is not None and (status == 200 or 400 <= status < 500), (status, body[:300])


big_ints = st.one_of(st.integers(-3, 10), st.integers(-2**70, 2**70),
                     st.sampled_from([2**31, 2**32, 2**62, 2**63, 2**64, 10**30]))
json_scalars = st.one_of(st.none(), st.booleans(), big_ints, st.floats(allow_nan=True),
                         st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=6), c, max_size=4)),
    max_leaves=20)
shapes = st.one_of(st.lists(big_ints, max_size=5), json_values)
datatypes = st.one_of(st.sampled_from(["FP32", "FP16", "FP64", "INT32", "INT64", "UINT8",
                                       "BOOL", "BYTES", "fp32", ""]), json_values)


@st.composite
def tensor(draw):
    t = {"name": draw(st.one_of(st.just("z"), st.text(max_size=4), json_values)),
         "datatype": draw(datatypes), "shape": draw(shapes)}
    kind = draw(st.sampled_from(["data", "binary", "both", "neither", "params_junk"]))
    if kind in ("data", "both"):
        t["data"] = draw(st.one_of(st.lists(st.floats(width=32), max_size=20),
                                   st.lists(st.lists(st.floats(width=32), max_size=9),
                                            max_size=4), json_values))
    if kind in ("binary", "both"):
        t["parameters"] = {"binary_data_size": draw(big_ints)}
    if kind == "params_junk":
        t["parameters"] = draw(json_values)
    return t


@st.composite
def infer_request(draw):
    req = {"inputs": draw(st.one_of(st.lists(tensor(), min_size=1, max_size=3), json_values))}
    if draw(st.booleans()):
        req["outputs"] = draw(st.one_of(
            st.lists(st.fixed_dictionaries({"name": st.sampled_from(["image", "x"])},
                                           optional={"parameters": json_values}),
                     max_size=2), json_values))
    if draw(st.booleans()):
        req["parameters"] = draw(st.one_of(st.just({"binary_data_output": True}), json_values))
    if draw(st.booleans()):
        req["id"] = draw(json_values)
    text = json.dumps(req).encode()
    payload = draw(st.binary(max_size=64))
    header_len = draw(st.one_of(st.none(), st.just(str(len(text))), big_ints.map(str),
                                st.text(max_size=5)))
    headers = {}
    if header_len is not None:
        headers["Inference-Header-Content-Length"] = header_len
        text = text + payload
    return text, headers


@FUZZ
@given(infer_request())
def test_fuzz_structured_infer_requests(fuzz_client, req):
    body, headers = req
    _check(*fuzz_client.request("POST", URL, body, headers)[::2])


@FUZZ
@given(st.one_of(
    st.binary(max_size=300),  # invalid UTF-8, truncated JSON, garbage
    st.integers(1, 3000).map(lambda d: b'{"inputs": ' + b"[" * d + b"]" * d + b"}"),
    st.integers(1, 3000).map(lambda d: b'{"inputs": ' + b"[" * d),  # unterminated nesting
    st.integers(1, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
))
def test_fuzz_raw_bodies(fuzz_client, body):
    _check(*fuzz_client.request("POST", URL, body)[::2])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["n", "seed", "ncols", "labels", "x"]),
                          st.one_of(big_ints.map(str), st.text(max_size=12),
                                    st.sampled_from(["1,2", "-1", "1e9", "0x10", " 3", ""]))),
                max_size=4),
       st.binary(max_size=20))
def test_fuzz_png_query(fuzz_client, params, junk):
    from urllib.parse import quote

    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params).encode() + (
        b"&" + junk.replace(b"&", b"") if junk else b"")
    status, headers, body = fuzz_client.request("GET", "/v2/models/dcgan/generate.png",
                                                query=query)
    _check(status, body)
    if status == 200:
        assert body.startswith(b"\x89PNG")


@FUZZ
@given(st.binary(min_size=0, max_size=64), st.lists(big_ints, max_size=3),
       st.integers(-10, 200), st.sampled_from(["FP32", "INT32", "FP64", "UINT8"]))
def test_fuzz_lying_binary_headers(fuzz_client, payload, shape, size, datatype):
    header = json.dumps({"inputs": [{"name": "z", "datatype": datatype, "shape": shape,
                                     "parameters": {"binary_data_size": size}}],
                         "parameters": {"binary_data_output": True}}).encode()
    for hl in (len(header), len(header) - 1, len(header) + 3):
        status, _, body = fuzz_client.request(
            "POST", URL, header + payload, {"Inference-Header-Content-Length": str(hl)})
        _check(status, body)
