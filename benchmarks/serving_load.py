"""Bounded load on keras-aigc-serve over 127.0.0.1: dynamic batching on vs off.

`--suite defences` (issue 11) instead measures what the server's defences cost at
concurrency 1 and 32: an undefended reference (limits lifted, no auth) against the
defaults without and with bearer-token auth, and with 300 idle connections held open;
and adaptive batching (the default) against batching off and a 5 ms delay window.

Batch-1 generate requests (binary tensors, keep-alive connections, one thread per client)
at concurrency 1, 8 and 32, against the same server binary with `--no-batching` (reference)
and with dynamic batching; then the p99 cost of `--max-delay-ms`. Every configuration
sends a fixed number of requests and stops at a time cap. Prints req/s, p50/p99 and the
on/off ratios, and writes them as JSON.

    python benchmarks/serving_load.py                       # ~3 min on 2 CPU cores
    python benchmarks/serving_load.py --model tf_tutorial --requests 200 --time-cap 20
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


MODELS = {
    # The TF-tutorial generator (28x28x1, z of 100, 2.3 M parameters, ~80 M MACs per image):
    # the project's throughput reference; compute-bound per row.
    "tf_tutorial": {},
    # A small generator (~0.2 M parameters, ~4 M MACs): per-request overhead dominates.
    "small": {"g_filters": (64, 32, 16)},
}


def export(out, model):
    from keras_aigc.export import export_bundle
    from keras_aigc.models import DCGAN

    gan = DCGAN.from_preset("tf_tutorial", **MODELS[model])
    gan.build()
    export_bundle(gan, out, formats=("onnx",), name="dcgan", seed=0)
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bundle, *args, env_extra=None):
        self.port = free_port()
        env = dict(os.environ)
        env.update(env_extra or {})
        env["PYTHONPATH"] = os.pathsep.join([os.path.join(ROOT, "export"), ROOT])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keras_aigc_runtime.server.main", bundle, "--port",
             str(self.port), "--log-level", "warning", *args], env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/v2/health/ready")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise SystemExit("server did not start")
            time.sleep(0.2)

    def metrics(self, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/metrics", headers=headers or {})
        text = c.getresponse().read().decode()
        vals = {}
        for key in ("count", "sum"):
            line = next((x for x in text.splitlines()
                         if x.startswith(f"keras_aigc_batch_size_{key}{{")), None)
            vals[key] = float(line.split()[-1]) if line else 0.0
        return vals

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _body(z):
    header = json.dumps({"inputs": [{"name": "z", "datatype": "FP32", "shape": list(z.shape),
                                     "parameters": {"binary_data_size": z.nbytes}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return header + z.tobytes(), {"Inference-Header-Content-Length": str(len(header)),
                                  "Content-Type": "application/octet-stream"}


def load(port, concurrency, n_requests, time_cap, latent_dim, extra_headers=None):
    """`n_requests` batch-1 requests from `concurrency` clients, stopped at `time_cap` s."""
    lock = threading.Lock()
    state = {"next": 0, "errors": 0}
    latencies = []
    bodies = [_body(np.random.default_rng(i).standard_normal((1, latent_dim))
                    .astype(np.float32)) for i in range(64)]
    start = time.perf_counter()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = state["next"]
                if i >= n_requests or time.perf_counter() - start > time_cap:
                    break
                state["next"] += 1
            body, headers = bodies[i % len(bodies)]
            if extra_headers:
                headers = {**headers, **extra_headers}
            t0 = time.perf_counter()
            conn.request("POST", "/v2/models/dcgan/infer", body, headers)
            resp = conn.getresponse()
            resp.read()
            dt = time.perf_counter() - t0
            with lock:
                if resp.status == 200:
                    latencies.append(dt)
                else:
                    state["errors"] += 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(time_cap + 120)
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(latencies), "errors": state["errors"],
            "seconds": round(wall, 3), "req_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None}


def compute_ceiling(bundle, num_threads, seconds=3.0):
    """ms per row of the bare ONNX Runtime session at batch 1 and 32, in this process.

    Their ratio bounds what batching can gain when the model's compute dominates:
    merging requests saves per-row compute only as far as a batched run is cheaper per row.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    sess = ort.InferenceSession(os.path.join(bundle, "model.onnx"), opts,
                                providers=["CPUExecutionProvider"])
    out = {}
    for b in (1, 32):
        z = np.random.default_rng(0).standard_normal((b, 100)).astype(np.float32)
        sess.run(None, {"z": z})
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sess.run(None, {"z": z})
            k += 1
        out[b] = (time.perf_counter() - t0) / k / b * 1000
    return out


def run_config(bundle, label, args, concurrencies, n_requests, time_cap, token=None,
               idle=0):
    server = Server(bundle, *args, env_extra={"KERAS_AIGC_SERVE_TOKENS": token} if token
                    else None)
    auth = {"Authorization": f"Bearer {token}"} if token else None
    rows, held = [], []
    try:
        load(server.port, 4, 40, 30, 100, auth)  # warm-up: sessions, allocator, connections
        for _ in range(idle):  # idle connections: connected, nothing sent
            held.append(socket.create_connection(("127.0.0.1", server.port)))
        for c in concurrencies:
            before = server.metrics(auth)
            row = load(server.port, c, n_requests, time_cap, 100, auth)
            after = server.metrics(auth)
            runs = after["count"] - before["count"]
            row["mean_rows_per_run"] = round((after["sum"] - before["sum"]) / runs, 2) \
                if runs else None
            row["config"] = label
            rows.append(row)
            print(f"  {label:<22} c={c:<3} {row['req_per_s']:>8.1f} req/s  "
                  f"p50 {row['p50_ms']:>7.2f} ms  p99 {row['p99_ms']:>7.2f} ms  "
                  f"rows/run {row['mean_rows_per_run']}  n={row['requests']} "
                  f"err={row['errors']}", flush=True)
    finally:
        for sock in held:
            sock.close()
        server.close()
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="small", choices=sorted(MODELS),
                   help="generator to export and serve")
    p.add_argument("--bundle", default=None, help="existing bundle (default: export --model)")
    p.add_argument("--instances", type=int, default=1,
                   help="server model instances (runs in parallel), same for every row")
    p.add_argument("--num-threads", type=int, default=1,
                   help="ONNX Runtime intra-op threads of the server (1: no spinning threads "
                        "competing with the HTTP loop and the load clients on 2 cores)")
    p.add_argument("--requests", type=int, default=600, help="requests per configuration")
    p.add_argument("--time-cap", type=float, default=30.0, help="seconds per configuration")
    p.add_argument("--out", default=None,
                   help="JSON results (default: runs/benchmarks/serving_load_<model>.json)")
    p.add_argument("--suite", default="batching", choices=["batching", "defences"],
                   help="batching on/off (default) or the cost of the issue-11 defences")
    args = p.parse_args()
    if args.suite == "defences":
        return defences(args)
    tmp = tempfile.mkdtemp(prefix="serving_load-")
    bundle = args.bundle or export(os.path.join(tmp, "bundle"), args.model)
    threads = ["--num-threads", str(args.num_threads), "--instances", str(args.instances)]
    conc = (1, 8, 32)
    ceiling = compute_ceiling(bundle, args.num_threads)
    print(f"bare ONNX Runtime ({args.num_threads} thread): {ceiling[1]:.2f} ms/row at batch 1, "
          f"{ceiling[32]:.2f} ms/row at batch 32 -> batching can save at most "
          f"x{ceiling[1] / ceiling[32]:.2f} of the compute")
    print(f"model {args.model}, {args.instances} instance(s), bundle {bundle}; {args.requests} requests or {args.time_cap} s per row; "
          f"{os.cpu_count()} CPUs")
    off = run_config(bundle, "batching off", ["--no-batching", *threads], conc, args.requests,
                     args.time_cap)
    on = run_config(bundle, "batching on, 5 ms", ["--max-batch", "64", "--max-delay-ms", "5",
                                                 *threads],
                    conc, args.requests, args.time_cap)
    delay = []
    for ms in ("0", "20"):
        delay += run_config(bundle, f"batching on, {ms} ms", ["--max-batch", "64",
                                                               "--max-delay-ms", ms, *threads],
                            (1, 32), args.requests, args.time_cap)
    print("\nbatching on (5 ms) / off (reference):")
    for a, b in zip(on, off, strict=True):
        print(f"  c={a['concurrency']:<3} throughput x{a['req_per_s'] / b['req_per_s']:.2f}   "
              f"p99 {a['p99_ms']:.2f} vs {b['p99_ms']:.2f} ms")
    ref1 = next(r for r in delay if r["config"].endswith(" 0 ms") and r["concurrency"] == 1)
    print("p99 cost of --max-delay-ms at concurrency 1 (vs max-delay 0):")
    for r in [on[0]] + [r for r in delay if r["concurrency"] == 1]:
        print(f"  {r['config']:<22} p99 {r['p99_ms']:.2f} ms  (+{r['p99_ms'] - ref1['p99_ms']:.2f})")
    args.out = args.out or os.path.join(ROOT, "runs", "benchmarks",
                                        f"serving_load_{args.model}.json")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"model": args.model, "num_threads": args.num_threads,
                   "instances": args.instances,
                   "ms_per_row": {"batch_1": ceiling[1], "batch_32": ceiling[32]},
                   "rows": off + on + delay, "cpus": os.cpu_count(),
                   "load_average": os.getloadavg()}, f, indent=2)
    print("wrote", args.out)


def defences(args):
    """Defence cost: req/s and p99 against an undefended reference, same binary."""
    tmp = tempfile.mkdtemp(prefix="serving_load-")
    bundle = args.bundle or export(os.path.join(tmp, "bundle"), args.model)
    base = ["--num-threads", str(args.num_threads), "--instances", str(args.instances)]
    # Limits lifted: what 161f78a effectively ran with (no caps, no timeouts, no auth).
    lifted = ["--max-connections", "100000", "--header-timeout", "3600", "--max-queue",
              "100000", "--request-timeout", "3600", "--parse-workers", "0"]
    token = "benchmark-token-" + "x" * 24
    conc = (1, 32)
    print(f"model {args.model}; {args.requests} requests or {args.time_cap} s per row; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()}")
    rows = {}
    rows["reference (limits lifted)"] = run_config(
        bundle, "reference", base + lifted, conc, args.requests, args.time_cap)
    rows["defaults, no auth"] = run_config(bundle, "defaults", base, conc, args.requests,
                                           args.time_cap)
    rows["defaults + auth"] = run_config(bundle, "defaults+auth", base, conc, args.requests,
                                         args.time_cap, token=token)
    # The header timeout would close idle connections after 10 s: hold them for the run.
    rows["defaults + auth + 300 idle"] = run_config(
        bundle, "auth+300 idle", base + ["--header-timeout", "600"], conc, args.requests,
        args.time_cap, token=token, idle=300)
    rows["batching off"] = run_config(bundle, "batching off", base + ["--no-batching"], conc,
                                      args.requests, args.time_cap)
    rows["delay window 5 ms"] = run_config(bundle, "delay 5 ms", base + ["--max-delay-ms", "5"],
                                           conc, args.requests, args.time_cap)
    ref = {r["concurrency"]: r for r in rows["reference (limits lifted)"]}
    adaptive = {r["concurrency"]: r for r in rows["defaults, no auth"]}
    print("\ndefence cost (ratio to the reference; goal at c=32: req/s >= 0.95):")
    for name in ("defaults, no auth", "defaults + auth", "defaults + auth + 300 idle"):
        for r in rows[name]:
            b = ref[r["concurrency"]]
            print(f"  {name:<28} c={r['concurrency']:<3} req/s x{r['req_per_s'] / b['req_per_s']:.3f}"
                  f"  p99 x{r['p99_ms'] / b['p99_ms']:.3f}")
    print("batching (ratio to adaptive, the default):")
    for name in ("batching off", "delay window 5 ms"):
        for r in rows[name]:
            b = adaptive[r["concurrency"]]
            print(f"  {name:<28} c={r['concurrency']:<3} req/s x{r['req_per_s'] / b['req_per_s']:.3f}"
                  f"  p99 x{r['p99_ms'] / b['p99_ms']:.3f}")
    out = args.out or os.path.join(ROOT, "runs", "benchmarks",
                                   f"serving_defences_{args.model}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"model": args.model, "rows": rows, "cpus": os.cpu_count(),
                   "load_average": os.getloadavg()}, f, indent=2)
    print("wrote", out)


if __name__ == "__main__":
    main()
