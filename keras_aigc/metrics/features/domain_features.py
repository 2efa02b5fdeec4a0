"""Feature extractor over a trained `DomainClassifier`, plus its training and storage."""

import datetime
import hashlib
import json
import os
import re

import numpy as np

from keras_aigc.metrics.features import _images

MODEL_FILE = "domain_classifier.keras"
INFO_FILE = "domain_classifier.json"
CACHE_ENV = "KERAS_AIGC_CACHE"


def cache_root():
    """`$KERAS_AIGC_CACHE` or `~/.cache/keras_aigc`."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache",
                                                     "keras_aigc")


def default_directory(source, **data_kwargs):
    """Cache directory of the classifier for one data source and split settings."""
    scheme, _, rest = source.partition(":")
    ident = os.path.abspath(rest) if scheme in ("npz", "dir") else source
    key = json.dumps([ident, sorted(data_kwargs.items())], default=str)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(rest or source))[:40]
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return os.path.join(cache_root(), "features", f"{slug}-{digest}")


# Arguments of keras_aigc.data.load that decide which images land in which split.
SPLIT_KEYS = ("validation_fraction", "test_fraction", "deduplicate", "split_seed", "data_dir",
              "image_size", "color_mode")


def train_domain_classifier(source, directory=None, epochs=2, batch_size=128,
                            learning_rate=1e-3, seed=0, verbose="auto", **data_kwargs):
    """Trains a `DomainClassifier` on a source's train split and saves it with its accuracy.

    Writes `domain_classifier.keras` and `domain_classifier.json` (test-split accuracy,
    source, training settings) to `directory` (default: the cache directory of the source).

    Args:
        source: str. A `keras_aigc.data.load` source spec.
        directory: str or None. Where to save. Defaults to `default_directory(source)`.
        epochs: int. Training epochs. Defaults to `2`.
        batch_size: int. Defaults to `128`.
        learning_rate: float. Adam learning rate. Defaults to `1e-3`.
        seed: int. Seeds weights and shuffling. Defaults to `0`.
        verbose: Keras `fit` verbosity.
        **data_kwargs: split arguments of `keras_aigc.data.load` (`split_seed`, ...).

    Returns:
        `(DomainFeatures, info dict)`.
    """
    import keras

    from keras_aigc import data
    from keras_aigc.metrics.features.domain_classifier import DomainClassifier

    unknown = sorted(set(data_kwargs) - set(SPLIT_KEYS))
    if unknown:
        raise ValueError(f"Unknown data arguments {unknown}; allowed: {list(SPLIT_KEYS)}.")
    directory = directory or default_directory(source, **data_kwargs)
    keras.utils.set_random_seed(seed)
    common = dict(batch_size=batch_size, labels=True, scaling="tanh", **data_kwargs)
    train_ds, info = data.load(source, split="train", seed=seed, with_info=True, **common)
    val_ds = data.load(source, split="validation", **common)
    test_ds, test_info = data.load(source, split="test", with_info=True, **common)
    clf = DomainClassifier(info.image_shape, num_classes=info.num_classes,
                           value_range=info.value_range)
    clf.compile(optimizer=keras.optimizers.Adam(learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
    clf.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose)
    _, test_accuracy = clf.evaluate(test_ds, verbose=0)
    record = {
        "source": source,
        "data": {k: v for k, v in data_kwargs.items()},
        "image_shape": list(info.image_shape),
        "num_classes": info.num_classes,
        "class_names": info.class_names,
        "train_examples": info.num_examples,
        "test_examples": test_info.num_examples,
        "test_accuracy": float(test_accuracy),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "feature_dim": clf.feature_dim,
        "directory": os.path.abspath(directory),
        "trained_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "keras_version": keras.__version__,
    }
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, "tmp." + MODEL_FILE)
    clf.save(tmp)
    os.replace(tmp, os.path.join(directory, MODEL_FILE))
    with open(os.path.join(directory, INFO_FILE), "w") as f:
        json.dump(record, f, indent=2)
    return DomainFeatures(clf, info=record), record


class DomainFeatures:
    """Features (penultimate layer) and class probabilities from a `DomainClassifier`.

    Args:
        classifier: `DomainClassifier`.
        batch_size: int. Images per forward pass. Defaults to `512`.
        info: dict or None. The training record (test accuracy, source, ...).

    Example:

    ```python
    extractor = keras_aigc.metrics.features.DomainFeatures.load("runs/x/features")
    feats = extractor(images, value_range=(-1, 1))
    probs = extractor.probabilities(images, value_range=(-1, 1))
    ```
    """

    name = "domain"

    def __init__(self, classifier, batch_size=512, info=None):
        self.classifier = classifier
        self.batch_size = int(batch_size)
        self.info = dict(info or {})
        self.dim = classifier.feature_dim
        self.num_classes = classifier.num_classes

    @classmethod
    def load(cls, directory, batch_size=512):
        """Loads a classifier saved by `train_domain_classifier`."""
        import keras

        path = os.path.join(directory, MODEL_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No domain classifier at {path!r}. Train one with "
                "`keras-aigc train-features CONFIG` (or keras_aigc.metrics.features."
                "train_domain_classifier).")
        info_path = os.path.join(directory, INFO_FILE)
        info = {}
        if os.path.isfile(info_path):
            with open(info_path) as f:
                info = json.load(f)
        return cls(keras.models.load_model(path), batch_size=batch_size, info=info)

    def _prepare(self, images, value_range):
        x = _images.check_images(images)
        want = tuple(self.classifier.image_shape)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, want))}) like "
                             f"the classifier's training data, got {x.shape}.")
        return _images.rescale(x, _images.check_value_range(value_range),
                               self.classifier.value_range)

    def __call__(self, images, value_range=(-1.0, 1.0)):
        """`(N, feature_dim)` float32 features of images in `value_range`."""
        x = self._prepare(images, value_range)
        return _images.batched(lambda b: self.classifier.features(b, training=False), x,
                               self.batch_size).astype(np.float32)

    def probabilities(self, images, value_range=(-1.0, 1.0)):
        """`(N, num_classes)` softmax class probabilities."""
        import keras

        x = self._prepare(images, value_range)
        logits = _images.batched(lambda b: self.classifier(b, training=False), x,
                                 self.batch_size)
        return np.asarray(keras.ops.softmax(logits.astype(np.float64)), np.float64)
