import numpy as np
import pytest

from keras_aigc.metrics import kernel_inception_distance


def test_kid_of_one_distribution_is_zero_within_three_std():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 16))
    y = rng.normal(size=(2000, 16))
    mean, std = kernel_inception_distance(x, y, num_subsets=50, subset_size=500)
    assert std > 0
    assert abs(mean) < 3 * std


def test_kid_of_shifted_distributions_is_positive():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 16))
    y = rng.normal(0.5, 1.0, size=(2000, 16))
    mean, std = kernel_inception_distance(x, y, num_subsets=50, subset_size=500)
    assert mean > 3 * std
    assert mean > 0


def test_kid_matches_a_hand_computed_unbiased_mmd():
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0]])

    def k(a, b):
        return (a @ b / 2 + 1) ** 3

    m = 3
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    # One subset of all rows: the subset draw only permutes, which leaves MMD² unchanged.
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=3)
    assert mean == pytest.approx(kxx + kyy - 2 * kxy)
    assert std == 0.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="same feature dimension"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(ValueError, match="num_subsets must be a positive integer"):
        kernel_inception_distance(np.zeros((10, 3)), np.zeros((10, 3)), num_subsets=0)
