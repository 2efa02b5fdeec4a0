"""Issue 11 regressions against a real uvicorn server: slow and idle connections,
the connection cap, the memory bound, health during a large parse, TLS.

Timeouts are compared with the server's own settings, never with a fixed wall clock.
"""

import json
import socket
import ssl
import threading
import time

import numpy as np
import pytest

from tests.runtime.conftest import http, serve

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
KEEP_ALIVE = 1


def _connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s


def _closed_within(sock, limit):
    """Seconds until the server closes `sock` (reads and discards any response)."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except (socket.timeout, TimeoutError):
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def _ok_request(port):
    z = np.zeros((1, 8), np.float32)
    body = json.dumps({"inputs": [{"name": "z", "datatype": "FP32", "shape": [1, 8],
                                   "data": z.ravel().tolist()}]}).encode()
    return http("POST", f"http://127.0.0.1:{port}/v2/models/dcgan/infer", body,
                {"Content-Type": "application/json"})[0]


@pytest.mark.slow
def test_slowloris_idle_partial_header_and_partial_body_connections_are_closed(dcgan_bundle):
    with serve(dcgan_bundle[1], "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout",
               str(BODY_TIMEOUT), "--keep-alive-timeout", str(KEEP_ALIVE)) as s:
        idle = _connect(s.port)
        partial_header = _connect(s.port)
        partial_header.sendall(b"POST /v2/models/dcgan/infer HTTP/1.1\r\nHost: x\r\n")
        partial_body = _connect(s.port)
        partial_body.sendall(b"POST /v2/models/dcgan/infer HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 1000\r\n\r\n{\"inputs\":")
        stop, trickled = threading.Event(), []

        def trickle():  # a byte of header every 0.2 s: the keep-alive timer never fires
            sock = _connect(s.port)
            trickled.append(sock)
            try:
                for byte in b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200:
                    if stop.is_set():
                        return
                    sock.send(bytes([byte]))
                    time.sleep(0.2)
            except OSError:
                trickled.append("closed")

        t = threading.Thread(target=trickle)
        t.start()
        # A normal client is served meanwhile.
        assert _ok_request(s.port) == 200
        limit = 10 * max(HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE)
        assert _closed_within(idle, limit) is not None, "idle connection left open"
        assert _closed_within(partial_header, limit) is not None, "partial headers left open"
        assert _closed_within(partial_body, limit) is not None, "partial body left open"
        t.join(limit)
        stop.set()
        assert "closed" in trickled, "a header sent byte by byte kept its connection"
        assert _ok_request(s.port) == 200
        assert "keras_aigc_connections_timed_out_total" in s.metrics()


def test_connection_cap_answers_503_and_frees_up(dcgan_bundle):
    cap = 4
    with serve(dcgan_bundle[1], "--max-connections", str(cap), "--header-timeout", "30",
               "--keep-alive-timeout", "30") as s:
        held = [_connect(s.port) for _ in range(cap)]
        time.sleep(0.3)
        extra = _connect(s.port)
        extra.settimeout(30)
        data = b""
        while True:
            chunk = extra.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in data.lower(), data
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 30
        while True:  # the server notices the closed connections
            if _ok_request(s.port) == 200:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "keras_aigc_connections_refused_total 1" in s.metrics()


def _rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.slow
def test_memory_stays_under_the_bound_from_settings_and_recovers(dcgan_bundle):
    max_body, readers, clients = 4 << 20, 2, 12
    with serve(dcgan_bundle[1], "--max-body-bytes", str(max_body), "--max-body-readers",
               str(readers), "--body-timeout", "60", "--parse-workers", "0") as s:
        assert _ok_request(s.port) == 200
        baseline = _rss(s.proc.pid)
        # Every body being received is held at most ~3 times (chunks, joined, parsed
        # copy); bodies waiting for a reader slot stay in kernel socket buffers.
        bound = baseline + readers * 3 * max_body + (64 << 20)
        body = b"[" + b"0," * (max_body // 2 - 2) + b"0]"
        assert len(body) <= max_body
        peak, stop = [0], threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], _rss(s.proc.pid))
                time.sleep(0.01)

        statuses = []

        def client():
            statuses.append(http("POST", s.base + "/v2/models/dcgan/infer", body,
                                 {"Content-Type": "application/json"}, timeout=120)[0])

        w = threading.Thread(target=watch)
        w.start()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        stop.set()
        w.join()
        assert statuses and all(400 <= st < 500 or st == 503 for st in statuses), statuses
        assert peak[0] < bound, (peak[0] - baseline) / 2**20
        time.sleep(1.0)
        assert _ok_request(s.port) == 200
        assert _rss(s.proc.pid) < bound


@pytest.mark.slow
def test_health_stays_responsive_while_a_max_size_body_is_parsed(dcgan_bundle):
    from keras_aigc_runtime.server.protocol import parse_infer_request

    rows = 131072
    z = np.random.default_rng(0).standard_normal((rows, 8)).astype(np.float32)
    # A valid-size JSON body whose input name is wrong: parsed in full, then 400.
    body = json.dumps({"inputs": [{"name": "w", "datatype": "FP32", "shape": [rows, 8],
                                   "data": z.ravel().tolist()}]}).encode()
    t0 = time.perf_counter()
    parse_infer_request(body, max_elements=4 * rows * 8 + 1024)
    parse_time = time.perf_counter() - t0
    with serve(dcgan_bundle[1], "--max-request-batch", str(rows), "--max-body-bytes",
               str(len(body) + 1)) as s:
        # Warm the parse worker process up (it starts on first use).
        assert http("POST", s.base + "/v2/models/dcgan/infer", body)[0] == 400
        result, latencies = {}, []

        def big():
            t = time.perf_counter()
            result["status"] = http("POST", s.base + "/v2/models/dcgan/infer", body,
                                    timeout=120)[0]
            result["time"] = time.perf_counter() - t

        t = threading.Thread(target=big)
        t.start()
        time.sleep(0.05)
        while t.is_alive():
            start = time.perf_counter()
            assert http("GET", s.base + "/v2/health/ready")[0] == 200
            latencies.append(time.perf_counter() - start)
        t.join()
    assert result["status"] == 400
    assert latencies, "the large request finished before any health check"
    # On 161f78a the health check waited for the whole parse on the event loop.
    assert max(latencies) < 0.5 * min(parse_time, result["time"]), (
        max(latencies), parse_time, result["time"])


def _self_signed(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def test_tls_and_token_file(dcgan_bundle, tmp_path):
    import urllib.request

    certfile, keyfile = _self_signed(tmp_path)
    token = "t" * 40
    (tmp_path / "tokens").write_text(token + "\n")
    ctx = ssl.create_default_context(cafile=certfile)
    with serve(dcgan_bundle[1], "--ssl-certfile", certfile, "--ssl-keyfile", keyfile,
               "--auth-token-file", str(tmp_path / "tokens"), scheme="https",
               ssl_context=ctx) as s:
        url = f"https://127.0.0.1:{s.port}/v2/models/dcgan"
        req = urllib.request.Request(url)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, context=ctx, timeout=30)
        assert e.value.code == 401
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
            assert r.status == 200 and json.loads(r.read())["name"] == "dcgan"
        with pytest.raises(OSError):  # plain HTTP is not served (reset or URLError)
            urllib.request.urlopen(f"http://127.0.0.1:{s.port}/v2/health/live", timeout=10)
        assert token not in s.log()
