"""Bundles shared by the runtime tests (exported once per session) and a server launcher."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

from keras_aigc.models import GenerativeModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT_DIR = os.path.join(ROOT, "export")


@keras.saving.register_keras_serializable(package="keras_aigc_tests")
class ToyConditionalGAN(GenerativeModel):
    """A tiny conditional generator (z, one-hot label) -> 8x8x1 image, for label tests.

    Only the `GenerativeModel` contract: no GAN machinery.

    Args:
        latent_dim: int. Size of z. Defaults to `4`.
        num_classes: int. Number of labels. Defaults to `3`.
    """

    family = "conditional_gan"
    conditional = True
    config_args = ("latent_dim", "num_classes")

    def __init__(self, latent_dim=4, num_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_shape = (8, 8, 1)
        inp = keras.Input((latent_dim + num_classes,))
        x = keras.layers.Dense(4 * 4 * 4)(inp)
        x = keras.layers.Reshape((4, 4, 4))(x)
        x = keras.layers.UpSampling2D()(x)
        x = keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(x)
        self.generator = keras.Model(inp, x, name="generator")

    def generator_inputs(self, z, labels):
        return keras.ops.concatenate(
            [z, keras.ops.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)

    def call(self, inputs):
        z, labels = inputs
        return self.generator(self.generator_inputs(z, labels))

    def decode_latents(self, z, labels):
        return self.generator(self.generator_inputs(z, labels))

    def export_tracked(self):
        return [self.generator]

    def export_signatures(self):
        def generate(z, labels):
            z = keras.ops.convert_to_tensor(z, "float32")
            labels = keras.ops.convert_to_tensor(labels, "int32")
            return {"image": self.decode_latents(z, labels)}

        return [self.image_signature("generate", generate)]


@pytest.fixture(scope="session")
def vae_bundle(tmp_path_factory):
    """(a small real VAE, bundle dir with ONNX decode.onnx/encode.onnx and fp32 TFLite)."""
    from keras_aigc.export import export_bundle
    from keras_aigc.models import VAE

    model = VAE(image_shape=(8, 8, 1), latent_dim=3, hidden_units=(8,), name="toy_vae")
    out = str(tmp_path_factory.mktemp("bundles") / "vae")
    export_bundle(model, out, formats=("tflite", "onnx"), seed=3)
    return model, out


@pytest.fixture(scope="session")
def cvae_bundle(tmp_path_factory):
    """(a small real ConditionalVAE with 3 classes, bundle dir with ONNX and fp32 TFLite)."""
    from keras_aigc.export import export_bundle
    from keras_aigc.models import ConditionalVAE

    model = ConditionalVAE(num_classes=3, image_shape=(8, 8, 1), latent_dim=3,
                           hidden_units=(8,), name="toy_cvae")
    out = str(tmp_path_factory.mktemp("bundles") / "cvae")
    export_bundle(model, out, formats=("tflite", "onnx"), seed=4)
    return model, out


@pytest.fixture(scope="session")
def dcgan_bundle(tmp_path_factory):
    """(Keras DCGAN, bundle dir): TFLite fp32 + int8 (dynamic batch) and ONNX."""
    from keras_aigc.export import export_bundle
    from keras_aigc.models import DCGAN

    # Named explicitly: the bundle (and served model) name defaults to the Keras name,
    # which Keras numbers (dcgan_24) when other tests built DCGANs first.
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=8, g_filters=(16, 8), d_filters=(8,),
                  name="dcgan")
    model.build()
    out = str(tmp_path_factory.mktemp("bundles") / "dcgan")
    export_bundle(model, out, formats=("tflite", "onnx"), quantize=("int8",), seed=0)
    return model, out


@pytest.fixture(scope="session")
def fixed_batch_bundle(tmp_path_factory, dcgan_bundle):
    """(Keras DCGAN, bundle dir) with only a fixed batch-4 TFLite file."""
    from keras_aigc.export import export_bundle

    model, _ = dcgan_bundle
    out = str(tmp_path_factory.mktemp("bundles") / "dcgan_b4")
    export_bundle(model, out, formats=("tflite",), batch_sizes=(4,), seed=1)
    return model, out


@pytest.fixture(scope="session")
def conditional_bundle(tmp_path_factory):
    """(Keras conditional toy GAN with 3 classes, bundle dir with ONNX only)."""
    from keras_aigc.export import export_bundle

    model = ToyConditionalGAN(name="toy_cgan")
    model((np.zeros((1, 4), np.float32), np.zeros((1,), np.int32)))
    out = str(tmp_path_factory.mktemp("bundles") / "cgan")
    export_bundle(model, out, formats=("onnx",), seed=2)
    return model, out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runtime_env():
    """Environment for subprocesses: this checkout's runtime first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([EXPORT_DIR, ROOT] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def http(method, url, body=None, headers=None, timeout=30, context=None):
    """Returns (status, headers with lower-case keys, body bytes); 4xx/5xx do not raise."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class Server:
    def __init__(self, proc, port, log_path):
        self.proc, self.port, self.log_path = proc, port, log_path
        self.url = f"127.0.0.1:{port}"
        self.base = f"http://127.0.0.1:{port}"

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def metrics(self):
        status, _, body = http("GET", self.base + "/metrics")
        assert status == 200
        return body.decode()

    def infer_json(self, model, inputs, timeout=30, **extra):
        body = json.dumps({"inputs": inputs, **extra}).encode()
        return http("POST", f"{self.base}/v2/models/{model}/infer", body,
                    {"Content-Type": "application/json"}, timeout)


@contextlib.contextmanager
def serve(bundle, *args, startup_timeout=90, scheme="http", ssl_context=None):
    """Runs `keras-aigc-serve bundle` on a free loopback port; always killed at exit."""
    port = free_port()
    log_path = os.path.join(bundle + f".server-{port}.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keras_aigc_runtime.server.main", bundle, "--host",
             "127.0.0.1", "--port", str(port), "--log-level", "warning", *args],
            stdout=log, stderr=subprocess.STDOUT, env=runtime_env())
    server = Server(proc, port, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
            try:
                if http("GET", f"{scheme}://127.0.0.1:{port}/v2/health/ready", timeout=2,
                        context=ssl_context)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in {startup_timeout}s:\n{server.log()}")
            time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
