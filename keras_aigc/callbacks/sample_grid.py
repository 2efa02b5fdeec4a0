"""A callback that saves a grid of generated images from fixed latents."""

import os

import keras
import numpy as np

from keras_aigc.distribute import is_chief
from keras_aigc.utils import save_grid
from keras_aigc.utils.image_grid import make_grid, to_uint8


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
        tensorboard_dir: str or None. When set, each grid is also logged there as the
            TensorBoard image `samples`, at the same 0-based epoch step as
            `keras.callbacks.TensorBoard` uses for its scalars.
        scale: int or None. Nearest-neighbour upscaling of the PNG and TensorBoard image.
            Defaults to `None`: enough for cells of at least 64 pixels (at least 2x), so
            8x8 images stay legible.
        interpolation_rows: int. With `tensorboard_dir`, also log the TensorBoard image
            `interpolation`: this many rows, each a slerp path between two fixed prior
            latents (`keras_aigc.latent.interpolate`), decoded at every grid. Models
            without a latent space (`latent_dim` None) skip it. Defaults to `0` (off).
        interpolation_steps: int >= 2. Images per interpolation row. Defaults to `8`.

    Example:

    ```python
    gan.fit(ds, epochs=10, callbacks=[keras_aigc.callbacks.SampleGrid("runs/x/samples")])
    ```
    """

    def __init__(self, directory, every=1, num_images=64, seed=0, labels=None,
                 tensorboard_dir=None, scale=None, interpolation_rows=0,
                 interpolation_steps=8):
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
        self.tensorboard_dir = tensorboard_dir
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int)
                                  or scale < 1):
            raise ValueError(f"scale must be a positive integer or None, got {scale!r}.")
        self.scale = scale
        if (isinstance(interpolation_rows, bool) or not isinstance(interpolation_rows, int)
                or interpolation_rows < 0):
            raise ValueError(f"interpolation_rows must be an integer >= 0, got "
                             f"{interpolation_rows!r}.")
        if (isinstance(interpolation_steps, bool) or not isinstance(interpolation_steps, int)
                or interpolation_steps < 2):
            raise ValueError(f"interpolation_steps must be an integer >= 2, got "
                             f"{interpolation_steps!r}.")
        self.interpolation_rows = interpolation_rows
        self.interpolation_steps = interpolation_steps
        self.written = []
        self._writer = None

    def _scale(self, images):
        if self.scale is not None:
            return self.scale
        return max(2, int(np.ceil(64 / max(images.shape[1:3]))))

    def write(self, name, step=None):
        """Generates the grid now and writes `<directory>/<name>.png`; returns the path.

        With `tensorboard_dir`, the grid also goes to TensorBoard at `step` (when given).
        """
        if not is_chief(self.model.distribute_strategy):
            return None
        # labels=None: the model's default (conditional models cycle the classes).
        images = self.model.generate(self.num_images, seed=self.seed, labels=self.labels)
        path = os.path.join(self.directory, f"{name}.png")
        rows = int(np.ceil(np.sqrt(self.num_images)))
        value_range = self.model.value_range
        scale = self._scale(images)
        save_grid(images, path, value_range=value_range, rows=rows, scale=scale)
        self.written.append(path)
        if self.tensorboard_dir is not None and step is not None:
            self._log_image(images, value_range, rows, scale, step)
            if self.interpolation_rows and self.model.latent_dim is not None:
                self._log_interpolation(value_range, scale, step)
        return path

    def interpolation_latents(self):
        """The fixed latents of the interpolation strip, `(rows * steps, latent_dim)`:
        row `i` is the slerp path from `latents(rows, seed + 1)[i]` to
        `latents(rows, seed + 2)[i]`."""
        from keras_aigc.latent import interpolate

        rows = self.interpolation_rows
        z0 = self.model.latents(rows, seed=self.seed + 1)
        z1 = self.model.latents(rows, seed=self.seed + 2)
        z = interpolate(z0, z1, self.interpolation_steps, method="slerp")
        return z.reshape(rows * self.interpolation_steps, -1)

    def _log_interpolation(self, value_range, scale, step):
        import tensorflow as tf

        labels = None
        if self.model.num_classes is not None:  # one class per row
            labels = np.repeat(self.model.normalize_labels(None, self.interpolation_rows),
                               self.interpolation_steps)
        images = np.asarray(self.model.generate_from_latents(self.interpolation_latents(),
                                                             labels=labels))
        grid = make_grid(to_uint8(images, value_range), rows=self.interpolation_rows)
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
        with self._writer.as_default():
            tf.summary.image("interpolation", grid[None], step=step,
                             description=f"{self.interpolation_rows} slerp paths of "
                                         f"{self.interpolation_steps} steps between fixed "
                                         f"latents (seeds {self.seed + 1}, {self.seed + 2})")
        self._writer.flush()

    def _log_image(self, images, value_range, rows, scale, step):
        import tensorflow as tf

        grid = make_grid(to_uint8(images, value_range), rows=rows)
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.tensorboard_dir)
        with self._writer.as_default():
            tf.summary.image("samples", grid[None], step=step,
                             description=f"{self.num_images} samples from fixed latents "
                                         f"(seed {self.seed})")
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            # Step = the 0-based epoch, as keras.callbacks.TensorBoard logs its epoch scalars.
            self.write(f"epoch_{epoch + 1:04d}", step=epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
