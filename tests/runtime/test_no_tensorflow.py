"""The runtime loads and generates in a process where importing TensorFlow fails."""

import subprocess
import sys
import textwrap

from tests.runtime.conftest import runtime_env

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "keras_aigc"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
""")


def test_load_and_generate_without_tensorflow(dcgan_bundle, fixed_batch_bundle, tmp_path):
    code = BLOCKER + textwrap.dedent(f"""
        try:
            import tensorflow
        except ImportError as e:
            print("blocked:", e)
        else:
            raise SystemExit("the blocker did not block tensorflow")
        import numpy as np
        import keras_aigc_runtime
        for backend, variant, bundle in [("onnx", None, {dcgan_bundle[1]!r}),
                                         ("tflite", None, {dcgan_bundle[1]!r}),
                                         ("tflite", "int8", {dcgan_bundle[1]!r}),
                                         ("tflite", None, {fixed_batch_bundle[1]!r})]:
            g = keras_aigc_runtime.load(bundle, backend=backend, variant=variant)
            px = g.generate(5, seed=0)
            assert px.shape == (5, 8, 8, 1) and px.dtype == np.uint8, px.shape
            np.save({str(tmp_path)!r} + f"/{{backend}}_{{variant}}_{{len(g.files[0])}}.npy", px)
        import keras_aigc_runtime.server.app  # the server stack too
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
        assert not bad, bad
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=240, env=runtime_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "blocked: tensorflow is blocked" in proc.stdout and proc.stdout.strip().endswith("ok")
    assert len(list(tmp_path.glob("*.npy"))) == 4
