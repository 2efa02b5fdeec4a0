"""Export a DCGAN, serve the bundle with keras-aigc-serve, query it with tritonclient.http.

    python examples/serve_and_query.py                       # from the repo root
    python examples/serve_and_query.py --model runs/quickstart/model.keras

Needs both packages (`pip install -e . -e ./export`) and `tritonclient[http]`. The
server process itself imports no TensorFlow.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import tritonclient.http as triton

import keras_aigc as ka
from keras_aigc.export import export_bundle

parser = argparse.ArgumentParser()
parser.add_argument("--model", default=None, help=".keras model to export (default: an "
                    "untrained DCGAN, enough to show the plumbing)")
parser.add_argument("--out", default="runs/example-serve")
args = parser.parse_args()

# 1. Export a verified bundle (ONNX for the server).
if args.model:
    import keras

    gan = keras.models.load_model(args.model)
else:
    gan = ka.models.DCGAN(image_shape=(28, 28, 1), latent_dim=64)
    gan.build()
os.makedirs(args.out, exist_ok=True)
bundle = os.path.join(args.out, "bundle")
export_bundle(gan, bundle, formats=("onnx",), overwrite=True, name="dcgan")

# 2. Start the server on a free loopback port.
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
server = subprocess.Popen([sys.executable, "-m", "keras_aigc_runtime.server.main", bundle,
                           "--port", str(port), "--max-delay-ms", "5"])
url = f"127.0.0.1:{port}"
try:
    client = triton.InferenceServerClient(url)
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.is_server_ready():
                break
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("keras-aigc-serve did not start")
        time.sleep(0.2)

    # 3. Query it like a Triton server: metadata, then latents in, images out (binary).
    meta = client.get_model_metadata("dcgan")
    print("model:", meta["name"], "inputs:", meta["inputs"], "outputs:", meta["outputs"])
    latent_dim = meta["inputs"][0]["shape"][1]
    z = np.random.default_rng(0).standard_normal((16, latent_dim)).astype(np.float32)
    inp = triton.InferInput("z", list(z.shape), "FP32")
    inp.set_data_from_numpy(z)
    images = client.infer("dcgan", [inp]).as_numpy("image")
    print("images:", images.shape, images.dtype, "range", images.min(), images.max())

    # 4. The convenience endpoint: a seeded PNG grid.
    png = urllib.request.urlopen(f"http://{url}/v2/models/dcgan/generate.png?n=16&seed=0").read()
    path = os.path.join(args.out, "grid.png")
    with open(path, "wb") as f:
        f.write(png)
    print("wrote", path)
    print(urllib.request.urlopen(f"http://{url}/metrics").read().decode().splitlines()[2])
    client.close()
finally:
    server.send_signal(signal.SIGTERM)  # graceful: finishes in-flight requests
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
