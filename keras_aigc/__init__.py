"""keras-aigc: generative models for Keras 3 on TensorFlow.

```python
import keras_aigc as ka
ds = ka.data.load("digits", batch_size=64)
gan = ka.models.DCGAN(image_shape=(32, 32, 1), latent_dim=64)
gan.compile()
gan.fit(ds, epochs=5, callbacks=[ka.callbacks.SampleGrid("runs/demo/samples")])
```
"""

__version__ = "0.1.0"

from keras_aigc import (  # noqa: E402
    callbacks,
    data,
    distribute,
    export,
    latent,
    layers,
    losses,
    metrics,
    models,
    rl,
    utils,
)

__all__ = ["callbacks", "data", "distribute", "export", "latent", "layers", "losses", "metrics",
           "models", "rl",
           "utils", "__version__"]
