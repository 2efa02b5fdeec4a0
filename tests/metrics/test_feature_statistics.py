import numpy as np
import pytest

from keras_aigc.metrics import FeatureStatistics


def test_streaming_statistics_equal_batch_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(1037, 16)) @ rng.normal(size=(16, 16))
    stats = FeatureStatistics()
    # Uneven batch sizes, including a batch of one.
    for start, stop in [(0, 1), (1, 100), (100, 611), (611, 1037)]:
        stats.update(x[start:stop])
    assert stats.count == 1037
    np.testing.assert_allclose(stats.mean, x.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.covariance, np.cov(x, rowvar=False), rtol=1e-10,
                               atol=1e-10)


def test_merge_of_two_workers_equals_whole():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 8))
    a = FeatureStatistics.from_features(x[:123])
    b = FeatureStatistics.from_features(x[123:], batch_size=50)
    a.merge(b)
    np.testing.assert_allclose(a.covariance, np.cov(x, rowvar=False), rtol=1e-10)


def test_float64_accumulation_survives_a_large_offset():
    # float32 sums of 1e4-offset features would lose the unit variance entirely.
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(20000, 4)) + 1e4).astype(np.float32)
    stats = FeatureStatistics()
    for i in range(0, len(x), 256):
        stats.update(x[i:i + 256])
    np.testing.assert_allclose(stats.covariance, np.cov(x.astype(np.float64), rowvar=False),
                               rtol=1e-8, atol=1e-8)


def test_save_load_round_trip(tmp_path):
    x = np.random.default_rng(3).normal(size=(50, 5))
    stats = FeatureStatistics.from_features(x)
    stats.save(tmp_path / "s.npz")
    back = FeatureStatistics.load(tmp_path / "s.npz")
    assert back.count == 50
    np.testing.assert_allclose(back.covariance, stats.covariance)


def test_bad_inputs():
    stats = FeatureStatistics().update(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dimension D=4"):
        stats.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"2-D \(N, D\)"):
        FeatureStatistics().update(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        _ = FeatureStatistics().update(np.zeros((1, 4))).covariance
    with pytest.raises(FileNotFoundError, match="path="):
        FeatureStatistics.load("/nonexistent/stats.npz")
