"""`LabelOneHot`: the one place where integer class labels become one-hot vectors."""

import keras
import numpy as np
import tensorflow as tf

from keras_aigc_runtime import postprocess as bundle_format


def _check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got "
                         f"num_classes={num_classes!r}.")
    return int(num_classes)


def one_hot_labels(labels, num_classes, dtype="float32"):
    """Integer labels `(B,)` (or `(B, 1)`) -> one-hot `(B, num_classes)` in `dtype`.

    The function behind `LabelOneHot`, for code outside a functional network (the PixelCNN's
    gated blocks, `GenerativeModel.onehot`). With concrete (eager) labels, a label outside
    `[0, num_classes)` raises; inside a traced graph (training steps, exported files) the
    labels were already checked where they entered (`GenerativeModel.normalize_labels`,
    the runtime), and no assertion op is added so that TFLite and ONNX keep builtin ops.

    Raises:
        ValueError: eager labels outside `[0, num_classes)` or not of an integer dtype.
    """
    num_classes = _check_num_classes(num_classes)
    if not keras.backend.is_keras_tensor(labels) and (
            not tf.is_tensor(labels) or tf.executing_eagerly()):
        # The bundle format's label rule (integer dtype, in range), as the runtime applies it.
        values = np.asarray(keras.ops.convert_to_numpy(labels)).reshape(-1)
        bundle_format.normalize_labels(values, len(values), num_classes)
    labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
    return keras.ops.one_hot(labels, num_classes, dtype=dtype)


@keras.saving.register_keras_serializable(package="keras_aigc")
class LabelOneHot(keras.layers.Layer):
    """Integer class labels `(B,)` -> one-hot float `(B, num_classes)`.

    Networks of conditional models take integer labels and turn them into one-hot vectors
    with this layer only, so that labels stay integers everywhere else (datasets,
    `generate`, exported signatures, the runtime). It has no weights and exports to
    SavedModel, TFLite (`ONE_HOT`) and ONNX (`OneHot`). Eager calls refuse labels outside
    `[0, num_classes)`, which `tf.one_hot` would silently turn into a zero vector.

    Args:
        num_classes: int. Number of classes.

    Example:

    ```python
    onehot = keras_aigc.layers.LabelOneHot(num_classes=3)
    onehot(keras.ops.array([0, 2]))  # [[1, 0, 0], [0, 0, 1]]
    ```
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.input_spec = keras.InputSpec(max_ndim=2)

    def call(self, labels):
        return one_hot_labels(labels, self.num_classes, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
