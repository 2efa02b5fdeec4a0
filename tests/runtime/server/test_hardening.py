"""Issue 11 regressions, in process: every hostile request gets a 4xx, 5xx bodies carry
a request id and no exception text, client disconnects, queue bound, deadlines, auth.

Each case here got a 500 (or hung, or allocated gigabytes) on 161f78a.
"""

import asyncio
import json
import logging
import threading

import numpy as np
import pytest

import keras_aigc_runtime
from keras_aigc_runtime.server import ServerConfig, create_app
from tests.runtime.server.asgi_client import AsgiClient

URL = "/v2/models/dcgan/infer"
PNG = "/v2/models/dcgan/generate.png"


def _ok_body(n=2, seed=0):
    z = np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)
    return json.dumps({"inputs": [{"name": "z", "datatype": "FP32", "shape": [n, 8],
                                   "data": z.ravel().tolist()}]}).encode(), z


@pytest.fixture(scope="module")
def generator(dcgan_bundle):
    return keras_aigc_runtime.load(dcgan_bundle[1])


@pytest.fixture(scope="module")
def client(generator):
    app = create_app(generator, ServerConfig(max_request_batch=16, max_body_bytes=1 << 20,
                                             parse_workers=0))
    with AsgiClient(app) as c:
        yield c


def _binary(shape, size, datatype="FP32", payload=b""):
    header = json.dumps({"inputs": [{"name": "z", "datatype": datatype, "shape": shape,
                                     "parameters": {"binary_data_size": size}}]}).encode()
    return header + payload, {"Inference-Header-Content-Length": str(len(header))}


def _deep(levels):
    return b'{"inputs": ' + b"[" * levels + b"]" * levels + b"}"


HOSTILE = [
    # (id, method, path, query, body, headers, expected status, message regex)
    ("shape 2**64 (OverflowError)", "POST", URL, b"",
     json.dumps({"inputs": [{"name": "z", "datatype": "FP32", "shape": [2**64, 8],
                             "data": []}]}).encode(), {}, 413, r"over the limit"),
    ("shape 2**32 x 2**32 (int64 count wraps)", "POST", URL, b"",
     json.dumps({"inputs": [{"name": "z", "datatype": "FP32", "shape": [2**32, 2**32],
                             "data": []}]}).encode(), {}, 413, r"over the limit"),
    ("binary shape 2**62 x 4 (int64 bytes wrap)", "POST", URL, b"",
     *_binary([2**62, 4], 0), 413, r"over the limit"),
    ("binary shape 2**64 x 0", "POST", URL, b"", *_binary([2**64, 0], 0), 413,
     r"over the limit"),
    ("nested 50000 levels (RecursionError)", "POST", URL, b"", _deep(50000), {}, 413,
     r"holds about 50002 values, over the limit"),
    ("nested 2000 levels", "POST", URL, b"", _deep(2000), {}, 400, r"nested deeper than 32"),
    ("outputs[0].parameters is a list", "POST", URL, b"",
     json.dumps({"inputs": json.loads(_ok_body()[0])["inputs"],
                 "outputs": [{"name": "image", "parameters": [1]}]}).encode(), {}, 400,
     r"optional object 'parameters'"),
    ("a 5000-digit int", "POST", URL, b"",
     b'{"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 8], "data": [' + b"9" * 5000
     + b"]}]}", {}, 400, r"Malformed JSON|not a \(nested\) list"),
    ("datatype is a list (found by the fuzz test)", "POST", URL, b"",
     json.dumps({"inputs": [{"name": "z", "datatype": ["FP32"], "shape": [1, 8],
                             "data": [0] * 8}]}).encode(), {}, 400, r"unsupported datatype"),
    ("invalid UTF-8", "POST", URL, b"", b'{"inputs": "\xff\xfe"}', {}, 400, r"Malformed JSON"),
    ("empty lists flood", "POST", URL, b"", b'{"inputs": [' + b"[]," * 100000 + b"[]]}", {},
     413, r"holds about \d+ values, over the limit"),
    ("png seed=-1", "GET", PNG, b"seed=-1", b"", {}, 400, r"seed=-1 must be in 0"),
    ("png seed=2**64", "GET", PNG, str.encode(f"seed={2**64}"), b"", {}, 400, r"must be in 0"),
    ("png ncols=10**30", "GET", PNG, b"n=1&ncols=" + b"1" + b"0" * 30, b"", {}, 400,
     r"ncols=10+ must be in 1 \.\.\. n=1"),
    ("png ncols=10**7 (24 GB grid)", "GET", PNG, b"n=1&ncols=10000000", b"", {}, 400,
     r"must be in 1 \.\.\. n=1"),
    ("png ncols=0", "GET", PNG, b"n=4&ncols=0", b"", {}, 400, r"ncols=0"),
    ("png labels count", "GET", PNG, b"n=4&labels=1,2", b"", {}, 400, r"labels must be one"),
    ("png n huge", "GET", PNG, b"n=" + b"9" * 40, b"", {}, 400, r"must be in 1 \.\.\. 16"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c[0])
def test_hostile_request_gets_4xx_then_a_valid_one_succeeds(client, generator, case):
    _, method, path, query, body, headers, status, match = case
    got, resp_headers, resp = client.request(method, path, body, headers, query)
    assert got == status, resp[:500]
    import re

    assert re.search(match, json.loads(resp)["error"]), json.loads(resp)["error"]
    body, z = _ok_body()
    got, _, resp = client.request("POST", URL, body)
    assert got == 200, resp[:500]
    np.testing.assert_array_equal(
        np.asarray(json.loads(resp)["outputs"][0]["data"], np.float32).reshape(2, 8, 8, 1),
        generator.run({"z": z})["image"])


def test_png_grid_pixel_bound(generator):
    # 16 images of 8x8 in one row are 1024 pixels: over a limit of 1000.
    app = create_app(generator, ServerConfig(max_request_batch=16, max_png_pixels=1000,
                                             parse_workers=0))
    with AsgiClient(app) as c:
        got, _, resp = c.request("GET", PNG, query=b"n=16&ncols=16")
        assert got == 400 and b"1024 pixels, over the limit of 1000" in resp
        got, _, resp = c.request("GET", PNG, query=b"n=9&ncols=3&seed=18446744073709551615")
        assert got == 200 and resp.startswith(b"\x89PNG")


def test_server_fault_answers_500_with_request_id_and_no_exception_text(dcgan_bundle, caplog):
    g = keras_aigc_runtime.load(dcgan_bundle[1])

    def broken(inputs, signature=None):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : secret internals")

    g.run_checked = broken
    with AsgiClient(create_app(g, ServerConfig(parse_workers=0))) as c:
        with caplog.at_level(logging.ERROR, "keras_aigc_runtime.server"):
            got, headers, resp = c.request("POST", URL, _ok_body()[0])
        assert got == 500
        body = json.loads(resp)
        rid = body["request_id"]
        assert headers["x-request-id"] == rid and rid in body["error"]
        assert "secret" not in resp.decode() and "ONNXRuntime" not in resp.decode()
        record = next(r for r in caplog.records if rid in r.getMessage())
        assert record.exc_info and "secret internals" in str(record.exc_info[1])


def test_client_disconnect_is_logged_quietly_and_counted_apart(client, caplog):
    body = _ok_body()[0]
    app = client.app
    before = app.state.metrics.render()
    with caplog.at_level(logging.DEBUG, "keras_aigc_runtime.server"):
        got, _, _ = client.request("POST", URL, chunks=[body[:10], body[10:]],
                                   disconnect_after=1)
    assert got == 499
    records = [r for r in caplog.records if "disconnect" in r.getMessage()]
    assert records and all(r.levelno <= logging.INFO and not r.exc_info for r in records)
    after = app.state.metrics.render()
    assert 'keras_aigc_client_disconnects_total{model="dcgan"} 1' in after
    assert 'status="500"' not in after and 'status="499"' not in after, after
    assert before.count("status=") == after.count("status=")


def test_full_queue_gets_503_with_retry_after_and_slow_run_gets_504(dcgan_bundle):
    g = keras_aigc_runtime.load(dcgan_bundle[1])
    release = threading.Event()
    real = g.run_checked

    def slow(inputs, signature=None):
        release.wait(30)
        return real(inputs, signature)

    g.run_checked = slow
    app = create_app(g, ServerConfig(max_queue=1, request_timeout_s=1.0, parse_workers=0))
    with AsgiClient(app) as c:
        async def scenario():
            body = _ok_body(1)[0]
            first = asyncio.ensure_future(c.arequest("POST", URL, body))  # running
            while not app.state.metrics.in_flight:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            second = asyncio.ensure_future(c.arequest("POST", URL, body))  # queued
            await asyncio.sleep(0.2)
            third = await c.arequest("POST", URL, body)  # queue full
            results = await asyncio.gather(first, second)
            release.set()
            return third, results

        third, (first, second) = c.loop.run_until_complete(scenario())
        assert third[0] == 503 and third[1]["retry-after"] == "1", third
        assert b"queued" in third[2]
        # Both waited past the 1 s deadline: 504, not a hang.
        assert first[0] == 504 and second[0] == 504, (first, second)
        assert b"deadline" in first[2]
        release.set()
        got, _, _ = c.request("POST", URL, _ok_body()[0])
        assert got == 200


def test_bearer_auth_401_without_token_health_open(generator, tmp_path, monkeypatch):
    from keras_aigc_runtime.server.auth import TOKEN_ENV, read_tokens

    path = tmp_path / "tokens"
    path.write_text("# serving tokens\n" + "a" * 32 + "\n")
    monkeypatch.setenv(TOKEN_ENV, "b" * 32)
    tokens = read_tokens(str(path))
    assert tokens == {"a" * 32, "b" * 32}
    app = create_app(generator, ServerConfig(parse_workers=0), auth_tokens=tokens)
    with AsgiClient(app) as c:
        body = _ok_body()[0]
        got, headers, resp = c.request("POST", URL, body)
        assert got == 401 and headers["www-authenticate"].startswith("Bearer")
        assert b"Authorization: Bearer" in resp
        assert c.request("POST", URL, body, {"Authorization": "Bearer " + "c" * 32})[0] == 401
        assert c.request("POST", URL, body, {"Authorization": "Basic " + "a" * 32})[0] == 401
        assert c.request("GET", "/metrics")[0] == 401
        assert c.request("POST", URL, body, {"Authorization": "Bearer " + "a" * 32})[0] == 200
        assert c.request("POST", URL, body, {"Authorization": "bearer " + "b" * 32})[0] == 200
        assert c.request("GET", "/v2/health/ready")[0] == 200
        assert c.request("GET", "/v2/health/live")[0] == 200


def test_token_sources_refuse_short_tokens_and_empty_files(tmp_path, monkeypatch):
    from keras_aigc_runtime.server.auth import TOKEN_ENV, read_tokens

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert read_tokens(None) == frozenset()
    f = tmp_path / "t"
    f.write_text("# only a comment\n\n")
    with pytest.raises(ValueError, match=r"holds no token"):
        read_tokens(str(f))
    f.write_text("short\n")
    with pytest.raises(ValueError, match=r"shorter than 16 characters"):
        read_tokens(str(f))
    with pytest.raises(ValueError, match=r"Cannot read the auth token file"):
        read_tokens(str(tmp_path / "missing"))
    f.write_text("# comment\n" + "x" * 20 + "\n")
    monkeypatch.setenv(TOKEN_ENV, "y" * 20 + ", " + "z" * 20)
    assert read_tokens(str(f)) == {"x" * 20, "y" * 20, "z" * 20}
