"""`load()`: a source spec in, a batched and prefetched `tf.data.Dataset` out."""

import dataclasses
import functools
import hashlib
import os

import numpy as np

from keras_aigc.data import sources

SCALINGS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
BINARIZATIONS = (None, "static", "dynamic")
SPLITS = ("train", "validation", "test", "all")


@dataclasses.dataclass
class DatasetInfo:
    """What a loaded dataset holds.

    Args:
        source: str. The source spec that was loaded.
        split: str. The split this dataset serves.
        image_shape: tuple. `(H, W, C)` of one image.
        num_classes: int. Number of label values.
        class_names: list of str.
        num_examples: int. Images in this split after cleaning.
        split_sizes: dict. Images per split after cleaning.
        duplicates_removed: int. Exact duplicates dropped (within splits, and train or
            validation images that also appear in test).
        skipped: list of str. Files that were dropped, as `"<path>: <kind> (<reason>)"`
            with kind `unreadable`, `too large` or `outside the root`; `skip_counts`
            counts them by kind.
        value_range: tuple. `(low, high)` of the scaled pixel values.
        scaling: str. `"tanh"` or `"sigmoid"`.
        binarize: str or None.
        steps_per_epoch: int or None. For an endless `repeat=True` stream, the steps of
            one epoch (`num_examples // batch_size` global batches) to pass to
            `fit(steps_per_epoch=...)`; `None` for datasets that end.
    """

    source: str
    split: str
    image_shape: tuple
    num_classes: int
    class_names: list
    num_examples: int
    split_sizes: dict
    duplicates_removed: int
    skipped: list
    value_range: tuple
    scaling: str
    binarize: object = None
    steps_per_epoch: object = None

    @property
    def skip_counts(self):
        """`{kind: count}` of `skipped` for every kind (`unreadable`, `too large`,
        `outside the root`), zeros included."""
        import re

        from keras_aigc.data.sources import SKIP_KINDS

        counts = dict.fromkeys(SKIP_KINDS, 0)
        pattern = re.compile(r": (" + "|".join(map(re.escape, SKIP_KINDS)) + r") \(")
        for entry in self.skipped:
            m = pattern.search(entry)
            counts[m.group(1) if m else "unreadable"] += 1
        return counts

    def to_dict(self):
        return dataclasses.asdict(self)


def _hashes(images):
    return np.array([hashlib.sha1(im.tobytes()).hexdigest() for im in images])


def _dedup_within(images, labels, hashes):
    _, first = np.unique(hashes, return_index=True)
    keep = np.sort(first)
    return images[keep], labels[keep], hashes[keep], len(images) - len(keep)


@functools.lru_cache(maxsize=8)
def _prepared(spec, data_dir, image_size, color_mode, deduplicate, validation_fraction,
              test_fraction, split_seed, stamp):
    """Reads a source once and carves deterministic, disjoint splits.

    `stamp` (file size and mtime) makes the cache notice a changed file.
    """
    del stamp
    raw = sources.read_source(spec, data_dir=data_dir, image_size=image_size,
                              color_mode=color_mode)
    removed = 0
    splits = {}
    for name, (x, y) in raw.splits.items():
        h = _hashes(x) if deduplicate else None
        if deduplicate:
            x, y, h, n = _dedup_within(x, y, h)
            removed += n
        splits[name] = (x, y, h)

    rng = np.random.default_rng(split_seed)
    if "all" in splits:
        x, y, h = splits.pop("all")
        order = rng.permutation(len(x))
        n_test = int(round(test_fraction * len(x)))
        n_val = int(round(validation_fraction * len(x)))
        parts = {
            "test": order[:n_test],
            "validation": order[n_test:n_test + n_val],
            "train": order[n_test + n_val:],
        }
        splits = {k: (x[v], y[v], h[v] if h is not None else None) for k, v in parts.items()}
    else:
        if deduplicate and "test" in splits:
            test_hashes = set(splits["test"][2].tolist())
            for name in list(splits):
                if name == "test":
                    continue
                x, y, h = splits[name]
                keep = np.array([v not in test_hashes for v in h], bool)
                removed += int((~keep).sum())
                splits[name] = (x[keep], y[keep], h[keep])
        if "validation" not in splits and "train" in splits:
            x, y, h = splits["train"]
            order = rng.permutation(len(x))
            n_val = int(round(validation_fraction * len(x)))
            val, train = order[:n_val], np.sort(order[n_val:])
            splits["validation"] = (x[np.sort(val)], y[np.sort(val)],
                                    h[np.sort(val)] if h is not None else None)
            splits["train"] = (x[train], y[train], h[train] if h is not None else None)
    out = {k: (v[0], v[1]) for k, v in splits.items()}
    out["all"] = (
        np.concatenate([v[0] for v in out.values()]),
        np.concatenate([v[1] for v in out.values()]),
    )
    return out, tuple(raw.class_names), tuple(raw.skipped), removed


def _stamp(spec):
    scheme, _, rest = spec.partition(":")
    if scheme in ("npz", "dir") and os.path.exists(rest):
        st = os.stat(rest)
        return (st.st_size, st.st_mtime_ns)
    return None


def _check_args(split, batch_size, scaling, binarize, validation_fraction, test_fraction):
    if split not in SPLITS:
        raise ValueError(f"Unrecognized split={split!r}. Supported splits are: {list(SPLITS)}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if scaling not in SCALINGS:
        raise ValueError(
            f"Unrecognized scaling={scaling!r}. Supported: {list(SCALINGS)} "
            "('tanh' -> [-1, 1], 'sigmoid' -> [0, 1])."
        )
    if binarize not in BINARIZATIONS:
        raise ValueError(
            f"Unrecognized binarize={binarize!r}. Supported: {list(BINARIZATIONS)}."
        )
    if binarize is not None and scaling != "sigmoid":
        raise ValueError(
            f"binarize={binarize!r} samples pixels in {{0, 1}} and needs scaling='sigmoid', "
            f"got scaling={scaling!r}."
        )
    for name, value in (("validation_fraction", validation_fraction),
                        ("test_fraction", test_fraction)):
        if not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value!r}.")
    if float(validation_fraction) + float(test_fraction) >= 1.0:
        raise ValueError(
            "validation_fraction + test_fraction must leave some training data, got "
            f"{validation_fraction} + {test_fraction}."
        )


def load_arrays(source, split="train", *, validation_fraction=0.1, test_fraction=0.1,
                deduplicate=True, split_seed=0, data_dir=None, image_size=None,
                color_mode="auto"):
    """Loads one split as uint8 arrays, cleaned and split but not scaled.

    Returns:
        `(images, labels, info)`: uint8 `(N, H, W, C)`, int64 `(N,)` and a `DatasetInfo`.
    """
    _check_args(split, 1, "tanh", None, validation_fraction, test_fraction)
    if isinstance(source, str) and source.startswith("records:"):
        from keras_aigc.data import records

        x, y, _, meta = records.read_arrays(source[len("records:"):], split, source)
        return x, y, records_info(source, split, meta)
    size = tuple(int(v) for v in image_size) if image_size is not None else None
    splits, names, skipped, removed = _prepared(
        source, data_dir, size, color_mode, bool(deduplicate), float(validation_fraction),
        float(test_fraction), int(split_seed), _stamp(source),
    )
    if split not in splits or len(splits[split][0]) == 0:
        raise ValueError(
            f"Source {source!r} has no {split!r} data (splits with data: "
            f"{[k for k, v in splits.items() if len(v[0])]}). "
            "Raise validation_fraction/test_fraction to carve one from train."
        )
    x, y = splits[split]
    info = DatasetInfo(
        source=source, split=split, image_shape=tuple(int(d) for d in x.shape[1:]),
        num_classes=len(names), class_names=list(names), num_examples=int(len(x)),
        split_sizes={k: int(len(v[0])) for k, v in splits.items()},
        duplicates_removed=int(removed), skipped=list(skipped), value_range=(0.0, 255.0),
        scaling="uint8",
    )
    return x, y, info


def records_info(source, split, meta=None):
    """`DatasetInfo` of a `records:DIR` split, from its dataset.json alone."""
    from keras_aigc.data import records

    directory = source[len("records:"):]
    meta = meta or records.read_metadata(directory, source)
    _, count = records.split_files(directory, meta, split, source)
    sizes = {k: int(v["num_examples"]) for k, v in meta["splits"].items()}
    sizes["all"] = sum(sizes.values())
    dropped = meta.get("dropped", {})
    return DatasetInfo(
        source=source, split=split, image_shape=tuple(int(d) for d in meta["image_shape"]),
        num_classes=len(meta["class_names"]), class_names=list(meta["class_names"]),
        num_examples=int(count), split_sizes=sizes,
        duplicates_removed=int(dropped.get("exact_duplicate", 0))
        + int(dropped.get("near_duplicate", 0)),
        skipped=[e for v in meta.get("dropped_examples", {}).values() for e in v],
        value_range=(0.0, 255.0), scaling="uint8")


def load(source, split="train", batch_size=128, *, scaling="tanh", binarize=None,
         labels=False, shuffle=None, seed=0, drop_remainder=False, validation_fraction=0.1,
         test_fraction=0.1, deduplicate=True, split_seed=0, data_dir=None, image_size=None,
         color_mode="auto", with_info=False, shuffle_buffer=10_000, cache=False,
         streaming=True, repeat=False):
    """Loads an image dataset as a batched, prefetched `tf.data.Dataset`.

    Args:
        source: str. `"digits"` (scikit-learn's bundled digits, 32x32, no network),
            `"npz:PATH"` (keras.datasets layout), `"tfds:NAME"` or `"dir:PATH"` (an image
            folder whose sub-folders are class labels).
        split: str. `"train"`, `"validation"`, `"test"` or `"all"`. Defaults to `"train"`.
        batch_size: int. Global batch size. Defaults to `128`.
        scaling: str. `"tanh"` maps pixels to [-1, 1], `"sigmoid"` to [0, 1].
        binarize: None, `"static"` (one fixed Bernoulli draw per pixel, seeded) or
            `"dynamic"` (a fresh draw every epoch). Needs `scaling="sigmoid"`.
        labels: bool. Yield `(images, labels)` instead of images. Defaults to `False`.
        shuffle: bool. Defaults to `True` for `"train"` and `False` otherwise.
        seed: int. Shuffle and dynamic-binarization seed. Defaults to `0`.
        drop_remainder: bool. Drop the last partial batch (set it under tf.distribute).
        validation_fraction: float. Share of train carved as validation when the source
            has no validation split. Defaults to `0.1`.
        test_fraction: float. Share carved as test for sources without one (`digits`,
            `dir:`). Defaults to `0.1`.
        deduplicate: bool. Drop exact duplicates by pixel hash. Defaults to `True`.
        split_seed: int. Seed of the deterministic split. Defaults to `0`.
        data_dir: str. tensorflow-datasets data directory.
        image_size: tuple. `(H, W)` to resize `dir:` images to; for `"digits"` the size
            of the bilinear resize (default 32x32; `(8, 8)` keeps the native pixels).
        color_mode: str. `"auto"`, `"grayscale"` or `"rgb"` for `dir:` images.
        with_info: bool. Return `(dataset, DatasetInfo)`. Defaults to `False`.
        shuffle_buffer: int. `records:` only: records in the shuffle buffer (memory is
            bounded by it, not by the dataset). Defaults to `10000`.
        cache: bool or str. `records:` only: cache decoded images in memory (`True`) or in
            a file prefix (str) after the first epoch. Defaults to `False`.
        streaming: bool. `records:` only: stream the shards (default) or read the split
            into memory first and use the in-memory pipeline.
        repeat: bool. `records:` streaming only: an endless stream for step-exact resume
            (see `keras_aigc.callbacks.StreamingBackupAndRestore`). Pass `e` over the data
            is shuffled with seeds of `(seed, e)` (the shard file order, then a
            permutation of each window of `shuffle_buffer` serialized records), so the
            stream does not depend on how it was iterated before; every batch is full. Pass `info.steps_per_epoch` (with
            `with_info=True`) to `fit(steps_per_epoch=...)`. Under a `TF_CONFIG` cluster
            the dataset is this worker's share: every `workers`-th shard file
            (FILE sharding, `AutoShardPolicy.OFF` on the dataset since it is already
            sharded), or with fewer shards than workers every `workers`-th record (DATA,
            with a warning). Not with `cache`. Defaults to `False`.

    Example:

    ```python
    ds, info = keras_aigc.data.load("digits", batch_size=64, with_info=True)
    print(info.image_shape, info.num_examples)
    ```
    """
    import tensorflow as tf

    _check_args(split, batch_size, scaling, binarize, validation_fraction, test_fraction)
    if not isinstance(repeat, bool):
        raise ValueError(f"repeat must be True or False, got repeat={repeat!r}.")
    if repeat and not (isinstance(source, str) and source.startswith("records:")
                       and streaming):
        raise ValueError(
            f"repeat=True makes an endless stream of `records:` shards (streaming=True); got "
            f"source={source!r}, streaming={streaming!r}. In-memory sources end each epoch; "
            "prepare the data with `keras-aigc prepare` to stream it.")
    if isinstance(source, str) and source.startswith("records:") and streaming:
        from keras_aigc.data import records

        if isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, int) \
                or shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be a positive integer, got {shuffle_buffer!r}.")
        low, high = SCALINGS[scaling]
        ds, meta, _ = records.stream(
            source[len("records:"):], split, batch_size, low=low, high=high, binarize=binarize,
            labels=labels, shuffle=(split == "train") if shuffle is None else shuffle,
            seed=seed, drop_remainder=drop_remainder, shuffle_buffer=shuffle_buffer,
            cache=cache, split_seed=split_seed, spec=source, repeat=repeat)
        info = records_info(source, split, meta)
        info.value_range, info.scaling, info.binarize = (low, high), scaling, binarize
        if repeat:
            info.steps_per_epoch = records.steps_per_epoch(info.num_examples, batch_size,
                                                           source)
        return (ds, info) if with_info else ds
    x, y, info = load_arrays(
        source, split, validation_fraction=validation_fraction, test_fraction=test_fraction,
        deduplicate=deduplicate, split_seed=split_seed, data_dir=data_dir,
        image_size=image_size, color_mode=color_mode,
    )
    info.value_range = SCALINGS[scaling]
    info.scaling = scaling
    info.binarize = binarize
    low, high = SCALINGS[scaling]

    if binarize == "static":
        # One seeded Bernoulli draw (Larochelle & Murray style static binarization).
        rng = np.random.default_rng([int(split_seed), int(seed), SPLITS.index(split)])
        x = (rng.random(x.shape, dtype=np.float32) < x / 255.0).astype(np.uint8) * 255

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if shuffle is None:
        shuffle = split == "train"
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def scale(images, lbl):
        images = tf.cast(images, tf.float32) * ((high - low) / 255.0) + low
        return images, lbl

    ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    if binarize == "dynamic":
        noise_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, noise_seeds.batch(2)))

        def dyn(batch, s):
            images, lbl = batch
            u = tf.random.stateless_uniform(tf.shape(images), seed=s)
            return tf.cast(u < images, tf.float32), lbl

        ds = ds.map(dyn, num_parallel_calls=tf.data.AUTOTUNE)
    if not labels:
        ds = ds.map(lambda images, lbl: images, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # In-memory data: shard by element across workers (DATA), never by file.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    options.deterministic = True
    ds = ds.with_options(options).prefetch(tf.data.AUTOTUNE)
    return (ds, info) if with_info else ds


def info(source, split="train", **kwargs):
    """Returns the `DatasetInfo` of a source without building a dataset."""
    if isinstance(source, str) and source.startswith("records:"):
        return records_info(source, split)
    return load_arrays(source, split, **kwargs)[2]
