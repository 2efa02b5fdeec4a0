"""A callback that logs the Frechet distance (FID) of generated samples during `fit`."""

import keras
import numpy as np

from keras_aigc.metrics.feature_statistics import FeatureStatistics
from keras_aigc.metrics.frechet_distance import frechet_distance


class FrechetDistanceCallback(keras.callbacks.Callback):
    """Every `every` epochs, generates `num_samples` images and logs their Frechet distance.

    The real statistics are computed once (streamed in batches) from `real_images`, or
    given directly as a `FeatureStatistics`. The value goes into the epoch `logs` under
    `log_name`, so `History`, TensorBoard and checkpoints that monitor it see it. Place it
    before callbacks that read the logs. Every worker computes it from the same seed, so
    the logged value is identical across workers.

    Args:
        feature_extractor: callable or None. `extractor(images, value_range=...)` ->
            `(N, D)` features, e.g. `keras_aigc.metrics.features.DomainFeatures`. `None`
            uses the standard FID network (`FIDInception`) when its weights are available
            (`KERAS_AIGC_FID_WEIGHTS`), and otherwise fails naming how to provide them.
            `network` then names the extractor that produced the values.
        real: array `(N, H, W, C)` of real images, or a `FeatureStatistics` of their
            features.
        real_value_range: tuple. Pixel range of `real` images. Defaults to `(0, 255)`.
        num_samples: int. Generated images per evaluation. Defaults to `1000`.
        every: int. Epoch interval. Defaults to `1`.
        seed: int. Seed of the generated samples. Defaults to `0`.
        batch_size: int. Images generated and featurized at a time. Defaults to `500`.
        log_name: str. Key in `logs`. Defaults to `"fid"`.

    Example:

    ```python
    feats = keras_aigc.metrics.features.DomainFeatures.load("runs/x/features")
    x_test, _, _ = keras_aigc.data.load_arrays("npz:mnist.npz", "test")
    gan.fit(ds, epochs=10, callbacks=[
        keras_aigc.callbacks.FrechetDistanceCallback(feats, x_test, num_samples=2000)])
    ```

    Reference:
        Heusel et al. GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
        Equilibrium, 2017.
    """

    def __init__(self, feature_extractor, real, real_value_range=(0.0, 255.0),
                 num_samples=1000, every=1, seed=0, batch_size=500, log_name="fid"):
        super().__init__()
        for name, value, minimum in (("num_samples", num_samples, 2), ("every", every, 1),
                                     ("batch_size", batch_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got "
                                 f"{name}={value!r}.")
        if feature_extractor is None:
            from keras_aigc.metrics.features import FIDInception

            feature_extractor = FIDInception(verbose=0)
        if not callable(feature_extractor):
            raise ValueError("feature_extractor must be callable as "
                             "extractor(images, value_range=...).")
        self.feature_extractor = feature_extractor
        self.network = getattr(feature_extractor, "name", type(feature_extractor).__name__)
        self.real = real
        self.real_value_range = tuple(real_value_range)
        self.num_samples = num_samples
        self.every = every
        self.seed = seed
        self.batch_size = batch_size
        self.log_name = log_name
        self._real_stats = real if isinstance(real, FeatureStatistics) else None
        self.history = []

    def real_statistics(self):
        if self._real_stats is None:
            x = np.asarray(self.real)
            stats = FeatureStatistics()
            for i in range(0, len(x), self.batch_size):
                stats.update(self.feature_extractor(x[i:i + self.batch_size],
                                                    value_range=self.real_value_range))
            self._real_stats = stats
        return self._real_stats

    def compute(self):
        """Generates the samples now and returns their Frechet distance to the real set."""
        model = self.model
        stats = FeatureStatistics()
        for i, start in enumerate(range(0, self.num_samples, self.batch_size)):
            n = min(self.batch_size, self.num_samples - start)
            labels = None
            if model.num_classes is not None:  # classes in turn across the whole sample
                labels = model.normalize_labels(None, start + n)[start:]
            images = model.generate(n, seed=self.seed + i, labels=labels)
            stats.update(self.feature_extractor(images, value_range=model.value_range))
        real = self.real_statistics()
        return frechet_distance(real.mean, real.covariance, stats.mean, stats.covariance)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        value = self.compute()
        self.history.append((epoch + 1, value))
        if logs is not None:
            logs[self.log_name] = value
