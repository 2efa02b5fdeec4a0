import os

import numpy as np
import pytest
from PIL import Image

from keras_aigc import data


def _batch(ds):
    return next(iter(ds))


@pytest.mark.parametrize("scaling,low,high", [("tanh", -1.0, 1.0), ("sigmoid", 0.0, 1.0)])
def test_digits_shapes_and_ranges(scaling, low, high):
    ds, info = data.load("digits", batch_size=32, scaling=scaling, with_info=True)
    x = _batch(ds).numpy()
    assert x.shape == (32, 32, 32, 1) and x.dtype == np.float32
    assert x.min() >= low and x.max() <= high
    assert x.min() == low  # digits have blank background
    assert info.image_shape == (32, 32, 1) and info.num_classes == 10
    assert info.value_range == (low, high)
    # 1,797 images, 10% test, 10% validation.
    assert info.split_sizes["train"] + info.split_sizes["validation"] + \
        info.split_sizes["test"] == 1797 - info.duplicates_removed
    assert info.split_sizes["test"] == round(0.1 * (1797 - info.duplicates_removed))


def test_labels_and_drop_remainder():
    ds, info = data.load("digits", split="test", batch_size=50, labels=True,
                         drop_remainder=True, with_info=True)
    batches = list(ds)
    assert len(batches) == info.num_examples // 50
    x, y = batches[0]
    assert y.dtype.name == "int32" and set(np.unique(y.numpy())) <= set(range(10))
    assert x.shape[0] == 50


def test_binarization_static_is_fixed_dynamic_changes():
    kw = dict(split="validation", batch_size=400, scaling="sigmoid", shuffle=False)
    s1 = _batch(data.load("digits", binarize="static", **kw)).numpy()
    s2 = _batch(data.load("digits", binarize="static", **kw)).numpy()
    assert set(np.unique(s1)) == {0.0, 1.0}
    np.testing.assert_array_equal(s1, s2)
    ds = data.load("digits", binarize="dynamic", **kw)
    e1, e2 = _batch(ds).numpy(), _batch(ds).numpy()
    assert set(np.unique(e1)) == {0.0, 1.0}
    assert (e1 != e2).mean() > 0.01  # a fresh draw each epoch
    # Bernoulli draws average to the grey level.
    grey = _batch(data.load("digits", **kw)).numpy()
    assert abs(e1.mean() - grey.mean()) < 0.01


def test_splits_deterministic_and_disjoint():
    parts = {}
    for split in ("train", "validation", "test"):
        x1, _, _ = data.load_arrays("digits", split)
        x2, _, _ = data.load_arrays("digits", split)
        np.testing.assert_array_equal(x1, x2)
        parts[split] = {im.tobytes() for im in x1}
    assert not parts["train"] & parts["validation"]
    assert not parts["train"] & parts["test"]
    assert not parts["validation"] & parts["test"]
    other, _, _ = data.load_arrays("digits", "test", split_seed=1)
    assert {im.tobytes() for im in other} != parts["test"]


def test_shuffle_seed_reproducible():
    a = _batch(data.load("digits", batch_size=16, seed=3)).numpy()
    b = _batch(data.load("digits", batch_size=16, seed=3)).numpy()
    c = _batch(data.load("digits", batch_size=16, seed=4)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _write_npz(path, n_train=20, n_test=10, **override):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 8, 8), dtype=np.uint8),
        "y_train": rng.integers(0, 3, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 8, 8), dtype=np.uint8),
        "y_test": rng.integers(0, 3, n_test).astype(np.uint8),
    }
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


def test_npz_source_and_dedup_against_test(tmp_path):
    arrays = _write_npz(tmp_path / "d.npz")
    arrays["x_train"][3] = arrays["x_test"][0]   # leaks into test
    arrays["x_train"][5] = arrays["x_train"][4]  # duplicate within train
    np.savez(tmp_path / "d.npz", **arrays)
    spec = f"npz:{tmp_path / 'd.npz'}"
    ds, info = data.load(spec, batch_size=64, validation_fraction=0.0, with_info=True,
                         shuffle=False)
    assert info.duplicates_removed == 2
    assert info.num_examples == 18 and info.image_shape == (8, 8, 1)
    x = _batch(ds).numpy()
    assert x.shape == (18, 8, 8, 1)
    expected = arrays["x_train"][[i for i in range(20) if i not in (3, 5)]]
    np.testing.assert_allclose(x[..., 0], expected / 127.5 - 1.0, atol=1e-6)


def test_real_mnist(mnist_path):
    ds, info = data.load(f"npz:{mnist_path}", batch_size=256, with_info=True)
    assert info.image_shape == (28, 28, 1) and info.num_classes == 10
    assert info.split_sizes["test"] == 10000 - 0
    assert info.split_sizes["train"] + info.split_sizes["validation"] + \
        info.split_sizes["test"] + info.duplicates_removed == 70000
    x, y, _ = data.load_arrays(f"npz:{mnist_path}", "all", deduplicate=False)
    assert x.shape == (70000, 28, 28, 1)
    train_x, _, _ = data.load_arrays(f"npz:{mnist_path}", "train", deduplicate=False,
                                     validation_fraction=0.0)
    assert abs(train_x.mean() - 33.318) < 1e-3  # the README's published mean pixel


def _png(path, value, size=(6, 6), mode="L"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.full((size[1], size[0]) + (() if mode == "L" else (3,)), value, np.uint8)
    Image.fromarray(arr, mode).save(path)


def test_dir_source_planted_duplicates(tmp_path):
    for i in range(6):
        _png(str(tmp_path / "cats" / f"{i}.png"), i * 10)
        _png(str(tmp_path / "dogs" / f"{i}.png"), 100 + i * 10)
    # Three planted exact duplicates: two of cats/0 (one across classes), one of dogs/2.
    _png(str(tmp_path / "cats" / "copy0.png"), 0)
    _png(str(tmp_path / "dogs" / "copy0.png"), 0)
    _png(str(tmp_path / "dogs" / "copy2.png"), 120)
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    _, _, info = data.load_arrays(f"dir:{tmp_path}", "all", test_fraction=0.0,
                                  validation_fraction=0.0)
    assert info.duplicates_removed == 3
    assert info.num_examples == 12
    assert info.class_names == ["cats", "dogs"] and info.image_shape == (6, 6, 1)


def test_dir_unreadable_file_is_reported(tmp_path):
    for i in range(4):
        _png(str(tmp_path / "a" / f"{i}.png"), i * 20)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.warns(UserWarning, match="broken.png"):
        _, _, info = data.load_arrays(f"dir:{tmp_path}", "all")
    assert len(info.skipped) == 1 and "broken.png" in info.skipped[0]


# ------------------------------------------------------------------ bad input
def test_unknown_scheme_lists_known():
    with pytest.raises(ValueError, match=r"Unrecognized data source 'hf:mnist'.*npz:PATH"):
        data.load("hf:mnist")


def test_missing_npz(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        data.load(f"npz:{tmp_path / 'nope.npz'}")


def test_npz_missing_keys(tmp_path):
    _write_npz(tmp_path / "bad.npz", y_test=None)
    with pytest.raises(ValueError, match=r"lacks the key\(s\) \['y_test'\]"):
        data.load(f"npz:{tmp_path / 'bad.npz'}")


def test_npz_not_an_archive(tmp_path):
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable .npz"):
        data.load(f"npz:{tmp_path / 'x.npz'}")


def test_dir_without_images(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match="found no images"):
        data.load(f"dir:{tmp_path}")


def test_dir_mixed_sizes_names_file(tmp_path):
    _png(str(tmp_path / "a" / "0.png"), 0, size=(6, 6))
    _png(str(tmp_path / "a" / "1.png"), 0, size=(7, 6))
    with pytest.raises(ValueError, match=r"1\.png.*7x6.*image_size"):
        data.load(f"dir:{tmp_path}")
    # ... and image_size= is the way out.
    _, _, info = data.load_arrays(f"dir:{tmp_path}", "all", image_size=(4, 4),
                                  test_fraction=0.0, validation_fraction=0.0)
    assert info.image_shape == (4, 4, 1)


def test_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.load(f"dir:{tmp_path / 'missing'}")


def test_tfds_offline_says_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match=r"tfds:mnist.*npz:PATH.*dir:PATH"):
        data.load("tfds:mnist", data_dir=str(tmp_path))


def test_tfds_unknown_dataset():
    with pytest.raises(ValueError, match="no dataset 'not_a_dataset_xyz'"):
        data.load("tfds:not_a_dataset_xyz")


@pytest.mark.parametrize("kwargs,match", [
    ({"scaling": "zscore"}, "Unrecognized scaling='zscore'"),
    ({"binarize": "yes"}, "Unrecognized binarize='yes'"),
    ({"binarize": "static", "scaling": "tanh"}, "needs scaling='sigmoid'"),
    ({"split": "dev"}, "Unrecognized split='dev'"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"validation_fraction": 1.5}, "validation_fraction must be in"),
    ({"validation_fraction": 0.6, "test_fraction": 0.5}, "must leave some training data"),
    ({"split": "validation", "validation_fraction": 0.0}, "has no 'validation' data"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load("digits", **kwargs)


def test_digits_at_native_resolution():
    from sklearn.datasets import load_digits

    from keras_aigc.data import sources

    raw = sources.read_source("digits", image_size=(8, 8)).splits["all"][0]
    expected = (load_digits().images * (255.0 / 16.0)).round().clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(raw[..., 0], expected)
    x, _, info = data.load_arrays("digits", "train", image_size=(8, 8))
    assert x.shape[1:] == (8, 8, 1) and tuple(info.image_shape) == (8, 8, 1)
    assert data.load_arrays("digits", "train")[0].shape[1:] == (32, 32, 1)
