import numpy as np
import pytest

from keras_aigc.metrics import precision_recall


def test_identical_sets_have_precision_and_recall_one():
    x = np.random.default_rng(0).normal(size=(300, 8))
    pr = precision_recall(x, x.copy(), k=3, batch_size=64)
    assert pr == {"precision": 1.0, "recall": 1.0}


def test_disjoint_clusters_have_precision_and_recall_zero():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 8))
    fake = rng.normal(size=(300, 8)) + 50.0
    pr = precision_recall(real, fake, k=3)
    assert pr["precision"] == pytest.approx(0.0, abs=0.01)
    assert pr["recall"] == pytest.approx(0.0, abs=0.01)


def test_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(2)
    centers = np.array([[0.0, 0.0], [20.0, 0.0]])
    real = np.concatenate([c + rng.normal(size=(500, 2)) for c in centers])
    fake = centers[0] + rng.normal(size=(1000, 2))  # only the first mode
    pr = precision_recall(real, fake, k=3)
    assert pr["precision"] > 0.95
    assert pr["recall"] == pytest.approx(0.5, abs=0.05)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same feature dimension.*D=2.*D=3"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="k=10 needs more samples"):
        precision_recall(np.zeros((10, 2)), np.zeros((10, 2)), k=10)
