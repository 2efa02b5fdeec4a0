"""The `records:DIR` source: streams the TFRecord shards written by `keras-aigc prepare`.

Memory is bounded by the shuffle buffer (and prefetch), never by the dataset: shard files
are interleaved in parallel, decoded and scaled in parallel, then batched.
"""

import json
import os
import warnings

import numpy as np

DATASET_JSON = "dataset.json"
FORMAT_VERSIONS = (1,)
RECORD_SPLITS = ("train", "validation", "test", "all")


def read_metadata(directory, spec=None):
    """Reads and checks `DIR/dataset.json`; never opens a shard."""
    spec = spec or f"records:{directory}"
    if not directory:
        raise ValueError(f"Source {spec!r} names no folder. Use records:DIR (the OUTPUT of "
                         "`keras-aigc prepare`).")
    path = os.path.join(directory, DATASET_JSON)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Source {spec!r}: no {DATASET_JSON} in {os.path.abspath(directory)!r}. Create it "
            "with `keras-aigc prepare SOURCE OUTPUT` and pass records:OUTPUT.")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"Source {spec!r}: {path!r} is not valid JSON ({e}).") from e
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version not in FORMAT_VERSIONS:
        raise ValueError(f"Source {spec!r}: {path!r} has format_version={version!r}; this "
                         f"keras-aigc reads {list(FORMAT_VERSIONS)}. Re-run `keras-aigc prepare`.")
    for key in ("image_shape", "image_format", "class_names", "splits"):
        if key not in meta:
            raise ValueError(f"Source {spec!r}: {path!r} lacks {key!r}.")
    return meta


def split_files(directory, meta, split, spec):
    """Shard paths and record count of one split (`"all"`: every split, in order)."""
    if split not in RECORD_SPLITS:
        raise ValueError(f"Unrecognized split={split!r}. Supported splits are: "
                         f"{list(RECORD_SPLITS)}.")
    names = ("train", "validation", "test") if split == "all" else (split,)
    files, count = [], 0
    for name in names:
        info = meta["splits"].get(name) or {"shards": [], "num_examples": 0}
        files += [os.path.join(directory, s["file"]) for s in info["shards"]]
        count += int(info["num_examples"])
    if count == 0:
        have = [k for k, v in meta["splits"].items() if v.get("num_examples")]
        raise ValueError(f"Source {spec!r} has no {split!r} data (splits with data: {have}). "
                         "Re-run `keras-aigc prepare` with --validation-fraction/--test-fraction.")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(f"Source {spec!r}: {len(missing)} shard(s) listed in "
                                f"{DATASET_JSON} are missing, e.g. {missing[0]!r}.")
    return files, count


def num_workers(environ=None):
    """Workers (chief + workers) named by TF_CONFIG; 1 without it."""
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not raw:
        return 1
    try:
        cluster = json.loads(raw).get("cluster", {})
    except ValueError:
        return 1
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def shard_policy(num_files, workers, spec):
    """FILE when every worker gets at least one shard, else DATA (with a warning)."""
    import tensorflow as tf

    policy = tf.data.experimental.AutoShardPolicy
    if workers <= 1 or num_files >= workers:
        return policy.FILE
    warnings.warn(
        f"Source {spec!r}: {num_files} shard(s) for {workers} workers, so every worker reads "
        "every shard and keeps 1/{workers} of the records (AutoShardPolicy.DATA). Re-run "
        "`keras-aigc prepare` with --num-shards >= the number of workers to read disjoint "
        "files.".replace("{workers}", str(workers)), stacklevel=3)
    return policy.DATA


def decoder(meta):
    """A function serialized `tf.train.Example` -> (uint8 `(H, W, C)` image, int32 label, hash)."""
    import tensorflow as tf

    shape = [int(d) for d in meta["image_shape"]]
    fmt = meta["image_format"]
    features = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "hash": tf.io.FixedLenFeature([], tf.string),
    }

    def decode(serialized):
        ex = tf.io.parse_single_example(serialized, features)
        if fmt == "raw":
            image = tf.reshape(tf.io.decode_raw(ex["image"], tf.uint8), shape)
        elif fmt == "png":
            image = tf.io.decode_png(ex["image"], channels=shape[-1])
        else:
            image = tf.io.decode_jpeg(ex["image"], channels=shape[-1])
        image = tf.ensure_shape(image, shape)
        return image, tf.cast(ex["label"], tf.int32), ex["hash"]

    return decode


def read_arrays(directory, split, spec=None):
    """Every record of a split in shard order, as uint8 images, int64 labels and hashes."""
    import tensorflow as tf

    spec = spec or f"records:{directory}"
    meta = read_metadata(directory, spec)
    files, count = split_files(directory, meta, split, spec)
    decode = decoder(meta)
    xs, ys, hs = [], [], []
    for raw in tf.data.TFRecordDataset(files):
        image, label, h = decode(raw)
        xs.append(image.numpy())
        ys.append(int(label))
        hs.append(h.numpy().decode())
    return np.stack(xs), np.asarray(ys, np.int64), hs, meta


def worker_index(environ=None):
    """This task's index among the workers of a TF_CONFIG cluster (0 without one).

    The order MultiWorkerMirroredStrategy uses: the chief is 0, `worker` i is i + 1 when
    the cluster has a chief, i otherwise.
    """
    raw = (environ if environ is not None else os.environ).get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cfg = json.loads(raw)
    except ValueError:
        return 0
    task = cfg.get("task") or {}
    cluster = cfg.get("cluster") or {}
    if task.get("type") == "chief":
        return 0
    return int(task.get("index") or 0) + (1 if cluster.get("chief") else 0)


def worker_files(files, workers, index, spec):
    """The shard files worker `index` of `workers` reads in a `repeat=True` stream.

    Returns `(files, data_shard)`: with at least as many files as workers, every
    `workers`-th file from `index` (FILE sharding: disjoint files, `data_shard` False);
    with fewer, every file, and `data_shard` True: the worker keeps every `workers`-th
    record from `index` (DATA sharding, with a warning).
    """
    if workers <= 1:
        return list(files), False
    if not 0 <= index < workers:
        raise ValueError(f"Source {spec!r}: worker index {index} is outside the cluster of "
                         f"{workers} workers named by TF_CONFIG.")
    if shard_policy(len(files), workers, spec) == _file_policy():
        return list(files[index::workers]), False
    return list(files), True


def _file_policy():
    import tensorflow as tf

    return tf.data.experimental.AutoShardPolicy.FILE


def steps_per_epoch(num_examples, batch_size, spec):
    """Steps of one epoch of a `repeat=True` stream: whole global batches per pass."""
    steps = int(num_examples) // int(batch_size)
    if steps < 1:
        raise ValueError(f"Source {spec!r}: {num_examples} record(s) do not fill one batch "
                         f"of batch_size={batch_size}; an endless stream needs at least one "
                         "full batch per epoch. Lower batch_size.")
    return steps


def _pass_seed(seed, epoch, salt):
    """A well-mixed int64 seed of `(seed, epoch, salt)`, computed in the graph."""
    import tensorflow as tf

    pair = tf.stack([tf.constant(int(seed), tf.int64), epoch * 2 + salt])
    return tf.random.stateless_uniform([], seed=pair, minval=0, maxval=2**62, dtype=tf.int64)


def stream(directory, split, batch_size, *, low, high, binarize, labels, shuffle, seed,
           drop_remainder, shuffle_buffer=10_000, cache=False, cycle_length=None,
           split_seed=0, spec=None, repeat=False):
    """The streaming pipeline; see `keras_aigc.data.load` for the arguments.

    Returns `(dataset, dataset.json dict, records in the split)`.
    """
    import tensorflow as tf

    spec = spec or f"records:{directory}"
    meta = read_metadata(directory, spec)
    files, count = split_files(directory, meta, split, spec)
    decode = decoder(meta)
    autotune = tf.data.AUTOTUNE
    if repeat:
        if cache:
            raise ValueError(
                f"Source {spec!r}: cache={cache!r} with repeat=True is not supported (the "
                "endless stream re-reads shards in a new order every pass). Use repeat=False "
                "to cache, or drop cache.")
        ds = _endless_records(files, shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer,
                              cycle_length=cycle_length, spec=spec)
        # Every batch is full in an endless stream; a static batch dimension.
        drop_remainder = True
    else:
        ds = _one_pass_records(files, shuffle=shuffle, seed=seed, cycle_length=cycle_length)
    ds = ds.map(decode, num_parallel_calls=autotune, deterministic=True)
    if binarize == "static":
        # One fixed draw per image, seeded by its content hash: the same in every epoch
        # and on every worker, whatever the order.
        def static(image, label, h):
            key = tf.strings.to_hash_bucket_fast(h, 2**31 - 1)
            u = tf.random.stateless_uniform(tf.shape(image), seed=tf.stack(
                [key, tf.cast(split_seed * 1_000_003 + seed, tf.int64)]))
            return tf.cast(u < tf.cast(image, tf.float32) / 255.0, tf.uint8) * 255, label, h

        ds = ds.map(static, num_parallel_calls=autotune, deterministic=True)
    ds = ds.map(lambda image, label, h: (image, label), num_parallel_calls=autotune,
                deterministic=True)
    if cache:
        ds = ds.cache(cache if isinstance(cache, str) else "")
    if shuffle and not repeat:
        ds = ds.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=autotune,
                  deterministic=True)

    def scale(images, lbl):
        return tf.cast(images, tf.float32) * ((high - low) / 255.0) + low, lbl

    ds = ds.map(scale, num_parallel_calls=autotune, deterministic=True)
    if binarize == "dynamic":
        # A fresh draw every epoch; an endless stream is one iteration whose noise is
        # fixed by `seed`, like its order.
        noise_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=not repeat)
        ds = tf.data.Dataset.zip((ds, noise_seeds.batch(2)))

        def dyn(batch, s):
            images, lbl = batch
            u = tf.random.stateless_uniform(tf.shape(images), seed=s)
            return tf.cast(u < images, tf.float32), lbl

        ds = ds.map(dyn, num_parallel_calls=autotune)
    if not labels:
        ds = ds.map(lambda images, lbl: images, num_parallel_calls=autotune)
    options = tf.data.Options()
    if repeat:
        # The stream is already this worker's share (see `_endless_records`).
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.OFF
    else:
        options.experimental_distribute.auto_shard_policy = shard_policy(
            len(files), num_workers(), spec)
    options.deterministic = True
    ds = ds.with_options(options).prefetch(autotune)
    return ds, meta, count


def _interleave(ds, num_files, shuffle, cycle_length):
    import tensorflow as tf

    if not shuffle:
        # Shard order, record order: the same sequence as `read_arrays`.
        return ds.interleave(tf.data.TFRecordDataset, cycle_length=1, block_length=1)
    cycle = min(num_files, cycle_length or 8)
    if cycle <= 1:
        return ds.interleave(tf.data.TFRecordDataset, cycle_length=1, block_length=1)
    return ds.interleave(tf.data.TFRecordDataset, cycle_length=cycle, block_length=1,
                         num_parallel_calls=min(cycle, 8), deterministic=True)


def _one_pass_records(files, *, shuffle, seed, cycle_length):
    """Serialized records of one pass over `files` (re-shuffled file order per iteration)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    return _interleave(ds, len(files), shuffle, cycle_length)


def _endless_records(files, *, shuffle, seed, shuffle_buffer, cycle_length, spec):
    """Serialized records of this worker's share, pass after pass, without end.

    Pass `e` reads the worker's shard files in an order seeded by `(seed, e)` and permutes
    each window of `shuffle_buffer` consecutive records with a seed of `(seed, e, window)`
    (stateless ops only), so each pass is a permutation of the worker's records that does
    not depend on how the stream was iterated before, nor on the global seed: a restored
    iterator and an uninterrupted one agree. Under a TF_CONFIG cluster the worker
    reads every `workers`-th shard file (FILE sharding), or, with fewer files than
    workers, every file and every `workers`-th record of it (DATA sharding, warned).
    """
    import tensorflow as tf

    workers, index = num_workers(), worker_index()
    files, data_shard = worker_files(files, workers, index, spec)
    names = tf.constant(files)

    def one_pass(epoch):
        order = names
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                names, seed=tf.stack([tf.constant(int(seed), tf.int64), epoch]))
        ds = _interleave(tf.data.Dataset.from_tensor_slices(order), len(files), shuffle,
                         cycle_length)
        if data_shard:
            ds = ds.shard(workers, index)
        if shuffle:
            # Stateless: windows of `shuffle_buffer` records, each permuted with a seed of
            # (seed, pass, window). No RNG state to checkpoint, and unlike a shuffle op
            # with a computed seed, independent of the global seed.
            key = _pass_seed(seed, epoch, 1)
            ds = ds.batch(int(shuffle_buffer)).enumerate().map(
                lambda i, window: tf.random.experimental.stateless_shuffle(
                    window, seed=tf.stack([key, i]))).unbatch()
        return ds

    # flat_map hides that the stream never ends; say so (fit and the backup callback
    # read the cardinality).
    return tf.data.Dataset.counter().flat_map(one_pass).apply(
        tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))
