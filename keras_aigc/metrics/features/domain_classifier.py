"""A small CNN classifier of the training data whose penultimate layer gives features."""

import keras


@keras.saving.register_keras_serializable(package="keras_aigc")
class DomainClassifier(keras.Model):
    """Conv-pool blocks, a dense feature layer and a linear classifier head.

    Trained on the dataset's own train split (`keras-aigc train-features CONFIG`), its
    penultimate activations are features that know the domain — far more telling for
    28x28 digits than ImageNet Inception features of images blown up to 299x299.

    Args:
        image_shape: tuple. `(H, W, C)` of the images.
        num_classes: int. Number of labels.
        filters: tuple of int. Channels of each conv + max-pool block.
            Defaults to `(16, 32)`.
        feature_dim: int. Width of the penultimate (feature) layer. Defaults to `128`.
        dropout: float. Dropout before and after the feature layer. Defaults to `0.25`.
        value_range: tuple. `(low, high)` of the pixel values it was trained on.
            Defaults to `(-1, 1)`.

    Example:

    ```python
    clf = keras_aigc.metrics.features.DomainClassifier((28, 28, 1), num_classes=10)
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    feats = clf.features(images)   # (N, 128)
    ```

    Reference:
        The "domain-specific classifier" features of e.g. Binkowski et al., Demystifying
        MMD GANs, 2018 (LeNet features for MNIST).
    """

    def __init__(self, image_shape, num_classes, filters=(16, 32), feature_dim=128,
                 dropout=0.25, value_range=(-1.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        image_shape = tuple(int(d) for d in image_shape)
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape!r}.")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}.")
        self.image_shape = image_shape
        self.num_classes = num_classes
        self.filters = tuple(int(f) for f in filters)
        self.feature_dim = int(feature_dim)
        self.dropout = float(dropout)
        self.value_range = tuple(float(v) for v in value_range)
        self.blocks = []
        for i, f in enumerate(self.filters):
            self.blocks.append(keras.layers.Conv2D(f, 3, padding="same", activation="relu",
                                                   name=f"conv{i}"))
            self.blocks.append(keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}"))
        self.flatten = keras.layers.Flatten(name="flatten")
        self.drop_in = keras.layers.Dropout(self.dropout, name="dropout_in")
        self.feature_layer = keras.layers.Dense(self.feature_dim, activation="relu",
                                                name="features")
        self.drop_out = keras.layers.Dropout(self.dropout, name="dropout_out")
        self.head = keras.layers.Dense(num_classes, dtype="float32", name="logits")
        self.build((None, *image_shape))

    def build(self, input_shape):
        x = keras.KerasTensor(tuple(input_shape))
        for layer in self.blocks:
            layer.build(x.shape)
            x = layer.compute_output_spec(x)
        flat = self.flatten.compute_output_spec(x)
        self.feature_layer.build(flat.shape)
        self.head.build((None, self.feature_dim))
        self.built = True

    def features(self, images, training=False):
        """Penultimate-layer activations `(N, feature_dim)`."""
        x = images
        for layer in self.blocks:
            x = layer(x)
        x = self.drop_in(self.flatten(x), training=training)
        return self.feature_layer(x)

    def call(self, images, training=False):
        """Class logits `(N, num_classes)`."""
        return self.head(self.drop_out(self.features(images, training=training),
                                       training=training))

    def get_config(self):
        config = super().get_config()
        config.update({
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "filters": list(self.filters),
            "feature_dim": self.feature_dim,
            "dropout": self.dropout,
            "value_range": list(self.value_range),
        })
        return config
