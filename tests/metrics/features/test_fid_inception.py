"""The standard FID network reproduces the reference features of the original pipeline."""

import os
import socket
import urllib.request

import numpy as np
import pytest

from keras_aigc.metrics.features import fid_inception
from keras_aigc.metrics.features.fid_inception import FIDInception, tf1_resize_bilinear
from keras_aigc.metrics.features.reference_cache import reference_features


@pytest.fixture(scope="module")
def reference(fid_weights_path):
    path = os.path.join(os.path.dirname(fid_weights_path), "reference_features.npz")
    if not os.path.isfile(path):
        pytest.fail(f"reference_features.npz missing next to {fid_weights_path}")
    with np.load(path) as ref:
        return {k: ref[k] for k in ref.files}


@pytest.fixture(scope="module")
def extractor(fid_weights_path):
    return FIDInception(weights=fid_weights_path, batch_size=16, verbose=0)


def _max_rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.slow
def test_network_reproduces_random299_features(extractor, reference):
    feats = extractor(reference["random299_uint8"], value_range=(0, 255))
    assert feats.shape == (16, 2048) and feats.dtype == np.float32
    assert _max_rel(feats, reference["random299_features"]) < 1e-4


@pytest.mark.slow
def test_resize_and_network_reproduce_mnist_features(extractor, reference):
    images = reference["mnist_test_first256_uint8"][..., None]
    feats = extractor(images, value_range=(0, 255))
    assert feats.shape == (256, 2048)
    assert _max_rel(feats, reference["mnist_features"]) < 1e-3
    # The same images given in [-1, 1] map to the same network input.
    scaled = images[:16].astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(extractor(scaled, value_range=(-1, 1)), feats[:16],
                               rtol=1e-4, atol=1e-4)


def test_tf1_resize_has_no_half_pixel_centers():
    # TF1 align_corners=False: output pixel i samples input at i * in/out (no +0.5 shift),
    # so upscaling [0, 10] by 2 gives [0, 5, 10, 10] (the last pixel clamps).
    x = np.array([0.0, 10.0], np.float32).reshape(1, 1, 2, 1)
    x = np.repeat(x, 2, axis=1)
    out = np.asarray(tf1_resize_bilinear(x, 4))
    np.testing.assert_allclose(out[0, 0, :, 0], [0.0, 5.0, 10.0, 10.0])


def test_missing_weights_names_three_ways_and_downloads_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(fid_inception.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("FIDInception tried to use the network")

    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(FileNotFoundError) as err:
        FIDInception()
    message = str(err.value)
    assert "weights=PATH" in message
    assert fid_inception.WEIGHTS_ENV in message
    assert "download=True" in message and fid_inception.RELEASE_URL in message
    assert "Nothing was downloaded" in message
    assert list(tmp_path.iterdir()) == []


def test_bad_weights_paths_fail_clearly(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="weights='/nonexistent/w.npz'"):
        FIDInception(weights="/nonexistent/w.npz")
    monkeypatch.setenv(fid_inception.WEIGHTS_ENV, str(tmp_path / "absent.npz"))
    with pytest.raises(FileNotFoundError, match="KERAS_AIGC_FID_WEIGHTS="):
        FIDInception()
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ValueError, match="lack 'conv.weight'"):
        FIDInception(weights=str(bad))
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        FIDInception(weights=str(bad), batch_size=0)


def test_download_rejects_a_file_with_the_wrong_sha256(monkeypatch, tmp_path):
    monkeypatch.delenv(fid_inception.WEIGHTS_ENV, raising=False)

    def fake_download(url, path):
        assert url == fid_inception.RELEASE_URL
        with open(path, "wb") as f:
            f.write(b"not the weights")

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_download)
    with pytest.raises(ValueError, match="sha256"):
        FIDInception(download=True, cache_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # nothing half-written remains


class _CountingExtractor:
    name = "counting"
    dim = 3
    preprocessing = "none"

    def __init__(self):
        self.calls = 0

    def __call__(self, images, value_range):
        self.calls += 1
        return np.asarray(images, np.float32).reshape(len(images), -1)[:, :3]


def test_reference_features_are_cached_by_data(tmp_path):
    extractor = _CountingExtractor()
    images = np.arange(4 * 2 * 2 * 1, dtype=np.uint8).reshape(4, 2, 2, 1)
    first, info = reference_features(extractor, images, cache_dir=str(tmp_path))
    again, info2 = reference_features(extractor, images, cache_dir=str(tmp_path))
    assert extractor.calls == 1 and not info["cache_hit"] and info2["cache_hit"]
    np.testing.assert_array_equal(first, again)
    other = images.copy()
    other[0, 0, 0, 0] += 1
    reference_features(extractor, other, cache_dir=str(tmp_path))
    assert extractor.calls == 2  # different data, different key
    assert not [p for p in os.listdir(tmp_path) if ".tmp" in p]
