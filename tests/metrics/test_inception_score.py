import numpy as np
import pytest

from keras_aigc.metrics import inception_score


@pytest.mark.parametrize("num_classes", [2, 10])
def test_uniform_one_hot_predictions_score_num_classes(num_classes):
    # 10 splits of 5 * C samples each, every split holding each class 5 times.
    probs = np.eye(num_classes)[np.arange(50 * num_classes) % num_classes]
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(num_classes, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_identical_predictions_score_one():
    probs = np.tile([0.7, 0.2, 0.1], (100, 1))
    mean, _ = inception_score(probs, splits=4)
    assert mean == pytest.approx(1.0)


def test_bad_inputs():
    with pytest.raises(ValueError, match="summing to 1"):
        inception_score(np.ones((10, 3)))
    with pytest.raises(ValueError, match="splits=20 exceeds"):
        inception_score(np.eye(3)[np.arange(10) % 3], splits=20)
