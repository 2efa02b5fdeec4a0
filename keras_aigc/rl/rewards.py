"""Rewards for `RewardFineTuning`, by name: `get(name, **kwargs)` builds one.

A reward maps a batch of images `(B, H, W, C)` in [0, 1] to a float `(B,)`. Rewards built
from this registry are TensorFlow functions (they run inside the training step); any
other Keras or numpy callable can be passed to `RewardFineTuning` directly.
"""

import os

import keras
import tensorflow as tf

REWARDS = {}


def register_reward(name):
    """Decorator: `@register_reward("name")` on a factory `(**kwargs) -> reward_fn`."""
    def wrap(factory):
        if name in REWARDS:
            raise ValueError(f"A reward named {name!r} is already registered.")
        REWARDS[name] = factory
        return factory
    return wrap


def get(name, **kwargs):
    """Builds the reward registered under `name` with `kwargs`."""
    if name not in REWARDS:
        raise ValueError(f"Unrecognized reward={name!r}. Supported rewards are: "
                         f"{sorted(REWARDS)}.")
    try:
        return REWARDS[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"Bad arguments for reward {name!r}: {e}") from e


class TensorReward:
    """A reward written in TensorFlow ops (runs in the graph, no numpy round trip)."""

    tf_compatible = True

    def __init__(self, fn, name):
        self.fn, self.name = fn, name

    def __call__(self, images):
        return self.fn(images)

    def __repr__(self):
        return f"TensorReward({self.name})"


@register_reward("mean_intensity")
def mean_intensity(target=1.0):
    """Toy reward: `1 - |mean pixel - target|` (in [0, 1]); `target=1` favours ink."""
    target = float(target)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"mean_intensity target must be in [0, 1], got target={target!r}.")

    def fn(images):
        mean = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3])
        return 1.0 - tf.abs(mean - target)

    return TensorReward(fn, f"mean_intensity(target={target})")


def _load_classifier(classifier):
    if isinstance(classifier, keras.Model):
        return classifier
    if not isinstance(classifier, (str, os.PathLike)):
        raise ValueError(f"classifier must be a keras.Model or the path of a .keras file, got "
                         f"{type(classifier).__name__}.")
    path = os.fspath(classifier)
    if not os.path.exists(path):
        raise ValueError(f"classifier file {path!r} does not exist; train one with "
                         "`keras-aigc train-features CONFIG`.")
    try:
        return keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - any load failure becomes one clear message
        raise ValueError(f"Could not load the classifier {path!r}: {e}") from e


@register_reward("classifier_prob")
def classifier_prob(target, classifier, log=False):
    """The classifier's probability of class `target` (or its log with `log=True`).

    Args:
        target: int. The class to steer towards.
        classifier: a `DomainClassifier` (or any Keras model mapping images to logits)
            or the path of its `.keras` file. Images in [0, 1] are mapped to its
            `value_range` when it has one.
        log: bool. Reward the log-probability instead. Defaults to `False`.
    """
    model = _load_classifier(classifier)
    num_classes = getattr(model, "num_classes", None)
    if isinstance(target, bool) or not isinstance(target, int) or target < 0 or (
            num_classes is not None and target >= num_classes):
        raise ValueError(f"classifier_prob target must be a class in [0, {num_classes}), "
                         f"got target={target!r}.")
    low, high = getattr(model, "value_range", (0.0, 1.0))

    def fn(images):
        x = tf.cast(images, tf.float32) * (high - low) + low
        logp = tf.nn.log_softmax(tf.cast(model(x, training=False), tf.float32), -1)
        value = logp[:, target]
        return value if log else tf.exp(value)

    reward = TensorReward(fn, f"classifier_prob(target={target})")
    reward.model = model
    return reward
