"""A callback that saves a grid of generated images from fixed latents."""

import os

import keras
import numpy as np

from keras_aigc.distribute import is_chief
from keras_aigc.utils import save_grid


class SampleGrid(keras.callbacks.Callback):
    """Writes a PNG grid generated from the same latents every `every` epochs.

    Only the chief writes: under a multi-worker strategy the other workers skip it.

    Args:
        directory: str. Where `epoch_0001.png`, ... go.
        every: int. Epoch interval. Defaults to `1`.
        num_images: int. Images in the grid. Defaults to `64`.
        seed: int. Seed of the fixed latents. Defaults to `0`.
        labels: array of int. Conditioning labels for conditional models; defaults to
            cycling through the classes when the model has `num_classes`.

    Example:

    ```python
    gan.fit(ds, epochs=10, callbacks=[keras_aigc.callbacks.SampleGrid("runs/x/samples")])
    ```
    """

    def __init__(self, directory, every=1, num_images=64, seed=0, labels=None):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}.")
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
            raise ValueError(f"num_images must be a positive integer, got {num_images!r}.")
        self.directory = directory
        self.every = every
        self.num_images = num_images
        self.seed = seed
        self.labels = labels
        self.written = []

    def write(self, name):
        """Generates the grid now and writes `<directory>/<name>.png`; returns the path."""
        if not is_chief(self.model.distribute_strategy):
            return None
        # labels=None: the model's default (conditional models cycle the classes).
        images = self.model.generate(self.num_images, seed=self.seed, labels=self.labels)
        path = os.path.join(self.directory, f"{name}.png")
        save_grid(images, path, value_range=self.model.value_range,
                  rows=int(np.ceil(np.sqrt(self.num_images))))
        self.written.append(path)
        return path

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            self.write(f"epoch_{epoch + 1:04d}")
