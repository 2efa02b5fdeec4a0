"""keras-aigc-runtime: load a keras-aigc export bundle and generate without TensorFlow.

```python
from keras_aigc_runtime import load
g = load("bundle/", backend="onnx")      # or "tflite"
pixels = g.generate(8, seed=1)           # uint8 (8, H, W, C)
```
"""

__version__ = "0.1.0"

from keras_aigc_runtime.generator import BACKENDS, Generator, load  # noqa: E402
from keras_aigc_runtime.manifest import load_manifest, validate_manifest  # noqa: E402

__all__ = ["BACKENDS", "Generator", "load", "load_manifest", "validate_manifest", "__version__"]
