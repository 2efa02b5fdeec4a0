"""The server end to end: a real tritonclient, every bad input, batching, graceful shutdown.

Each server runs as a subprocess on a free 127.0.0.1 port and is killed in `finally`
(`tests/runtime/conftest.py::serve`).
"""

import gzip
import io
import json
import re
import signal
import struct
import threading
import time

import numpy as np
import pytest
import tritonclient.http as triton
from PIL import Image
from tritonclient.utils import InferenceServerException

import keras_aigc_runtime
from tests.runtime.conftest import http, serve

MAX_BODY = 32 * 1024
MAX_REQUEST_BATCH = 16


@pytest.fixture(scope="module")
def server(dcgan_bundle):
    # A long batching window makes merging under concurrency certain, not a race.
    with serve(dcgan_bundle[1], "--max-batch", "64", "--max-delay-ms", "100",
               "--max-request-batch", str(MAX_REQUEST_BATCH),
               "--max-body-bytes", str(MAX_BODY)) as s:
        yield s


@pytest.fixture(scope="module")
def runtime(dcgan_bundle):
    return keras_aigc_runtime.load(dcgan_bundle[1])


def _z(seed, n=1):
    return np.random.default_rng(seed).standard_normal((n, 8)).astype(np.float32)


def test_tritonclient_live_ready_metadata_and_infer(server, runtime):
    client = triton.InferenceServerClient(server.url, connection_timeout=30, network_timeout=30)
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("dcgan") and client.is_model_ready("dcgan_generate")
        meta = client.get_model_metadata("dcgan")
        assert meta["name"] == "dcgan"
        assert meta["inputs"] == [{"name": "z", "datatype": "FP32", "shape": [-1, 8]}]
        assert meta["outputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 8, 8, 1]}]
        assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
        z = _z(11, 3)
        expected = runtime.run({"z": z})["image"]
        for binary_in, binary_out in [(False, False), (True, True), (True, False), (False, True)]:
            inp = triton.InferInput("z", list(z.shape), "FP32")
            inp.set_data_from_numpy(z, binary_data=binary_in)
            outputs = [triton.InferRequestedOutput("image", binary_data=binary_out)]
            res = client.infer("dcgan", [inp], outputs=outputs, request_id="r1")
            np.testing.assert_array_equal(res.as_numpy("image"), expected)
            assert res.get_response()["id"] == "r1"
        # tritonclient's default: binary outputs for every output (binary_data_output).
        inp = triton.InferInput("z", list(z.shape), "FP32")
        inp.set_data_from_numpy(z)
        res = client.infer("dcgan_generate", [inp])
        np.testing.assert_array_equal(res.as_numpy("image"), expected)
        assert res.get_output("image")["parameters"]["binary_data_size"] == expected.nbytes
        with pytest.raises(InferenceServerException, match=r"Unknown model 'nope'"):
            client.infer("nope", [inp])
    finally:
        client.close()


def test_png_endpoint_returns_the_seeded_grid(server, runtime):
    status, headers, body = http("GET", server.base + "/v2/models/dcgan/generate.png?n=4&seed=5"
                                 "&ncols=2")
    assert status == 200 and headers["content-type"] == "image/png"
    grid = np.asarray(Image.open(io.BytesIO(body)))
    expected = runtime.generate(4, seed=5)[..., 0]
    np.testing.assert_array_equal(grid[:8, 8:16], expected[1])
    np.testing.assert_array_equal(grid[8:16, :8], expected[2])


def _binary_request(z, size=None, header_length=None, extra=b""):
    header = json.dumps({"inputs": [{"name": "z", "datatype": "FP32", "shape": list(z.shape),
                                     "parameters": {"binary_data_size": size or z.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    hl = str(len(header)) if header_length is None else header_length
    return header + z.tobytes() + extra, {"Inference-Header-Content-Length": hl}


def _bad_requests():
    z = _z(0, 2)
    ok = {"name": "z", "datatype": "FP32", "shape": [2, 8], "data": z.ravel().tolist()}
    url = "/v2/models/dcgan/infer"
    j = lambda d: json.dumps(d).encode()  # noqa: E731
    nan = z.copy()
    nan[1, 3] = np.nan
    big = np.zeros((MAX_BODY // 4 + 8,), np.float32)
    return [
        ("unknown model", "/v2/models/nope/infer", j({"inputs": [ok]}), {}, 404,
         r"Unknown model 'nope'"),
        ("unknown version", "/v2/models/dcgan/versions/2/infer", j({"inputs": [ok]}), {}, 404,
         r"Unknown version '2'"),
        ("wrong input name", url, j({"inputs": [{**ok, "name": "w"}]}), {}, 400,
         r"takes inputs \['z'\].*unknown: \['w'\]"),
        ("wrong datatype", url, j({"inputs": [{**ok, "datatype": "INT32",
                                               "data": [0] * 16}]}), {}, 400,
         r"'z' must have datatype FP32, got INT32"),
        ("unsupported datatype", url, j({"inputs": [{**ok, "datatype": "BYTES"}]}), {}, 400,
         r"unsupported datatype 'BYTES'"),
        ("wrong shape", url, j({"inputs": [{**ok, "shape": [4, 4]}]}), {}, 400,
         r"'z' must have shape \[-1, 8\].*got \[4, 4\]"),
        ("data count", url, j({"inputs": [{**ok, "data": [0.0] * 15}]}), {}, 400,
         r"holds 15 values, shape \[2, 8\] needs 16"),
        ("batch over limit", url, j({"inputs": [{**ok, "shape": [MAX_REQUEST_BATCH + 1, 8],
                                                 "data": [0.0] * 8 * (MAX_REQUEST_BATCH + 1)}]}),
         {}, 400, rf"Batch size {MAX_REQUEST_BATCH + 1} .*limit of {MAX_REQUEST_BATCH}"),
        ("body over limit", url, _binary_request(big.reshape(-1, 8))[0],
         _binary_request(big.reshape(-1, 8))[1], 413, rf"over the limit of {MAX_BODY} bytes"),
        ("gzip bomb", url, gzip.compress(b" " * (MAX_BODY * 4)), {"Content-Encoding": "gzip"},
         413, r"Decompressed request body is over the limit"),
        ("NaN latent (binary)", url, *_binary_request(nan), 400, r"'z' holds NaN or Inf"),
        ("Inf latent (JSON)", url, b'{"inputs": [{"name": "z", "datatype": "FP32", "shape": '
                                   b'[1, 8], "data": [1, 2, 3, Infinity, 0, 0, 0, 0]}]}', {},
         400, r"'z' holds NaN or Inf"),
        ("malformed JSON", url, b'{"inputs": [', {}, 400, r"Malformed JSON"),
        ("not an object", url, b"[1, 2]", {}, 400, r"must be a JSON object"),
        ("no inputs", url, b'{"outputs": []}', {}, 400, r"non-empty 'inputs' list"),
        ("strings as data", url, j({"inputs": [{**ok, "data": ["a"] * 16}]}), {}, 400,
         r"'data' is not a \(nested\) list of FP32"),
        ("binary size mismatch", url, *_binary_request(z, size=z.nbytes - 4), 400,
         r"binary_data_size=60 does not match shape \[2, 8\] of FP32 \(64 bytes\)"),
        ("binary body too short", url, _binary_request(z)[0][:-4], _binary_request(z)[1], 400,
         r"runs past the end of the body"),
        ("binary trailing bytes", url, *_binary_request(z, extra=b"\0" * 4), 400,
         r"66 bytes of binary tensor data|68 bytes of binary tensor data"),
        ("bad header length", url, *_binary_request(z, header_length="10000"), 400,
         r"Inference-Header-Content-Length=10000 does not fit"),
        ("unknown output", url, j({"inputs": [ok], "outputs": [{"name": "logits"}]}), {}, 400,
         r"Unknown outputs \['logits'\]"),
    ]


@pytest.mark.parametrize("case", _bad_requests(), ids=lambda c: c[0])
def test_bad_input_gets_4xx_and_next_request_succeeds(server, runtime, case):
    _, path, body, headers, status, match = case
    got, resp_headers, resp = http("POST", server.base + path, body, headers)
    assert got == status, resp
    assert resp_headers["content-type"].startswith("application/json")
    assert re.search(match, json.loads(resp)["error"]), json.loads(resp)["error"]
    z = _z(1, 2)
    got, _, resp = server.infer_json("dcgan", [{"name": "z", "datatype": "FP32", "shape": [2, 8],
                                                "data": z.ravel().tolist()}])
    assert got == 200, resp
    np.testing.assert_allclose(np.asarray(json.loads(resp)["outputs"][0]["data"], np.float32)
                               .reshape(2, 8, 8, 1), runtime.run({"z": z})["image"], atol=0)


def test_other_bad_requests_get_json_4xx(server):
    for method, path, status in [("GET", "/v2/models/nope", 404), ("GET", "/v2/models/nope/ready",
                                                                    404),
                                 ("GET", "/v2/nothing/here", 404),
                                 ("GET", "/v2/models/dcgan/infer", 405),
                                 ("GET", "/v2/models/dcgan/generate.png?n=1000", 400),
                                 ("GET", "/v2/models/dcgan/generate.png?n=x", 400),
                                 ("GET", "/v2/models/dcgan/generate.png?labels=1", 400)]:
        got, headers, body = http(method, server.base + path)
        assert got == status, (path, body)
        assert "error" in json.loads(body), body
    assert http("GET", server.base + "/v2/health/live")[0] == 200


def _batch_hist(metrics_text, model="dcgan_generate"):
    def value(key):
        m = re.search(rf'^keras_aigc_batch_size_{key} (\S+)$', metrics_text, re.M)
        return float(m.group(1)) if m else 0.0
    ones = re.search(rf'^keras_aigc_batch_size_bucket{{model="{model}",le="1"}} (\S+)$',
                     metrics_text, re.M)
    return (value(f'count{{model="{model}"}}'), value(f'sum{{model="{model}"}}'),
            float(ones.group(1)) if ones else 0.0)


def test_dynamic_batching_merges_concurrent_requests(server, runtime):
    count0, rows0, _ = _batch_hist(server.metrics())
    n_clients = 12
    seeds = [100 + i for i in range(n_clients)]
    results, errors = {}, []
    barrier = threading.Barrier(n_clients)

    def client(seed):
        try:
            z = _z(seed)
            barrier.wait(30)
            body, headers = _binary_request(z)
            status, h, resp = http("POST", server.base + "/v2/models/dcgan/infer", body, headers)
            hl = int(h["inference-header-content-length"])
            results[seed] = (status, np.frombuffer(resp[hl:], np.float32).reshape(1, 8, 8, 1))
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    count1, rows1, _ = _batch_hist(server.metrics())
    runs, rows = count1 - count0, rows1 - rows0
    assert rows == n_clients
    assert runs < n_clients, f"{n_clients} concurrent requests ran in {runs} model runs"
    for seed in seeds:  # every response is its own request's image, not a neighbour's
        status, image = results[seed]
        assert status == 200
        np.testing.assert_array_equal(image, runtime.run({"z": _z(seed)})["image"])
    assert len({results[s][1].tobytes() for s in seeds}) == n_clients
    text = server.metrics()
    assert re.search(r'keras_aigc_requests_total\{model="dcgan",status="200"\} \d+', text)
    assert re.search(r'keras_aigc_request_latency_seconds_count\{model="dcgan"\} \d+', text)


def test_conditional_labels_out_of_range_and_binary_int32(conditional_bundle):
    g = keras_aigc_runtime.load(conditional_bundle[1])
    z = _z(4, 3)[:, :4].copy()
    with serve(conditional_bundle[1]) as s:
        for labels, status in [([0, 3, 1], 400), ([-1, 0, 1], 400), ([2, 0, 1], 200)]:
            lab = np.asarray(labels, np.int32)
            client = triton.InferenceServerClient(s.url, network_timeout=30)
            try:
                inputs = [triton.InferInput("z", [3, 4], "FP32"),
                          triton.InferInput("labels", [3], "INT32")]
                inputs[0].set_data_from_numpy(z)
                inputs[1].set_data_from_numpy(lab)
                if status == 200:
                    res = client.infer("toy_cgan", inputs)
                    np.testing.assert_array_equal(res.as_numpy("image"),
                                                  g.run({"z": z, "labels": lab})["image"])
                else:
                    with pytest.raises(InferenceServerException,
                                       match=r"allowed labels are 0 \.\.\. 2"):
                        client.infer("toy_cgan", inputs)
            finally:
                client.close()
        got, _, body = http("GET", s.base + "/v2/models/toy_cgan/generate.png?n=2&labels=5")
        assert got == 400 and b"labels must be in [0, 3)" in body
        got, _, body = http("GET", s.base + "/v2/models/toy_cgan/generate.png?n=2&labels=2")
        assert got == 200 and body.startswith(b"\x89PNG")


def test_sigterm_finishes_in_flight_requests(dcgan_bundle, runtime):
    # A 1.5 s batching window keeps the request in flight when SIGTERM arrives.
    with serve(dcgan_bundle[1], "--max-delay-ms", "1500", "--log-level", "info") as s:
        z = _z(9, 2)
        result = {}

        def client():
            result["response"] = s.infer_json("dcgan", [{"name": "z", "datatype": "FP32",
                                                          "shape": [2, 8],
                                                          "data": z.ravel().tolist()}])

        t = threading.Thread(target=client)
        t.start()
        deadline = time.monotonic() + 30
        while "keras_aigc_requests_in_flight 1" not in s.metrics():
            assert time.monotonic() < deadline, "the request never got in flight"
            time.sleep(0.02)
        s.proc.send_signal(signal.SIGTERM)
        t.join(60)
        status, _, body = result["response"]
        assert status == 200, body
        np.testing.assert_array_equal(
            np.asarray(json.loads(body)["outputs"][0]["data"], np.float32).reshape(2, 8, 8, 1),
            runtime.run({"z": z})["image"])
        # uvicorn re-raises the captured SIGTERM once its graceful shutdown is done.
        assert s.proc.wait(30) in (0, -signal.SIGTERM), s.log()
        log = s.log()
        assert "Waiting for application shutdown." in log and "Server stopped." in log, log
        assert "Finished server process" in log, log


def test_cli_refuses_a_missing_bundle(tmp_path):
    from keras_aigc_runtime.server.main import main

    assert main([str(tmp_path / "missing")]) == 2


_ = struct  # binary helpers above build bodies by hand


def test_tflite_backend_serves_fixed_batch_files(fixed_batch_bundle):
    g = keras_aigc_runtime.load(fixed_batch_bundle[1], backend="tflite")
    with serve(fixed_batch_bundle[1], "--backend", "tflite", "--num-threads", "1") as s:
        client = triton.InferenceServerClient(s.url, network_timeout=30)
        try:
            for n in (3, 6):  # padded to 4; split 4 + padded 2
                z = _z(20 + n, n)
                inp = triton.InferInput("z", [n, 8], "FP32")
                inp.set_data_from_numpy(z)
                np.testing.assert_array_equal(client.infer("dcgan", [inp]).as_numpy("image"),
                                              g.run({"z": z})["image"])
        finally:
            client.close()
        assert re.search(r'keras_aigc_requests_total\{model="_unknown",status="404"\}',
                         s.metrics()) is None
        assert http("POST", s.base + "/v2/models/junk/infer", b"{}")[0] == 404
        assert 'keras_aigc_requests_total{model="_unknown",status="404"} 1' in s.metrics()


def test_vae_server_exposes_decode_and_encode_models(vae_bundle):
    g = keras_aigc_runtime.load(vae_bundle[1])
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    with serve(vae_bundle[1]) as s:
        client = triton.InferenceServerClient(s.url, network_timeout=30)
        try:
            meta = client.get_model_metadata("toy_vae_encode")
            assert [o["name"] for o in meta["outputs"]] == ["loc", "scale"]
            inp = triton.InferInput("image", [2, 8, 8, 1], "FP32")
            inp.set_data_from_numpy(x)
            res = client.infer("toy_vae_encode", [inp])
            expected = g.encode(x)
            for name in ("loc", "scale"):
                np.testing.assert_array_equal(res.as_numpy(name), expected[name])
            assert client.get_model_metadata("toy_vae")["inputs"][0]["name"] == "z"
        finally:
            client.close()
        assert http("GET", s.base + "/v2/models/toy_vae_encode/generate.png")[0] == 400
        assert http("GET", s.base + "/v2/models/toy_vae/generate.png?n=2")[0] == 200


def test_conditional_vae_infer_and_png_routes_take_labels(cvae_bundle):
    model, bundle = cvae_bundle
    z = np.random.default_rng(5).standard_normal((3, 3)).astype(np.float32)
    labels = np.array([1, 2, 0], np.int32)
    with serve(bundle) as s:
        got, _, resp = s.infer_json("toy_cvae", [
            {"name": "z", "datatype": "FP32", "shape": [3, 3], "data": z.ravel().tolist()},
            {"name": "labels", "datatype": "INT32", "shape": [3], "data": labels.tolist()}])
        assert got == 200, resp
        image = np.asarray(json.loads(resp)["outputs"][0]["data"], np.float32).reshape(3, 8, 8, 1)
        np.testing.assert_allclose(image, model.decode(z, labels), atol=1e-4)
        status, _, body = http("GET", s.base + "/v2/models/toy_cvae/generate.png?n=3&seed=2"
                                              "&labels=1,2,0&ncols=3")
        assert status == 200
        grid = np.asarray(Image.open(io.BytesIO(body)))
        expected = keras_aigc_runtime.load(bundle).generate(3, seed=2, labels=labels)
        np.testing.assert_array_equal(grid[:8, 8:16], expected[1, ..., 0])
