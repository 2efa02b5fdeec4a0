"""The Spark job behind `keras-aigc prepare`: images in, sharded TFRecords out.

Stages (the driver only ever collects small metadata: counts, hashes of near-duplicate
pairs, shard descriptions):

1. executors read and process every input (decode, validate, colour mode, resize, hash,
   encode), persisted;
2. exact duplicates: distinct pixel hashes; near duplicates: LSH bands of the 64-bit
   pHash, Hamming distance inside each band group; the driver turns the (few) close pairs
   into clusters with a union-find;
3. the split of every image is a function of its cluster's hash; shards per split are
   sized from the counts;
4. one task per shard sorts its records by hash and writes the shard atomically; the
   driver then writes `dataset.json` (atomically, last) and removes stale shards.
"""

import json
import math
import os
import platform
import re
import sys
import uuid

from keras_aigc.data.prepare import dedup, images, inputs, writer

SPLIT_ORDER = ("train", "validation", "test")
FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
EXAMPLES_PER_REASON = 10


def _check(name, value, ok, allowed):
    if not ok:
        raise ValueError(f"{name}={value!r} is not allowed; {allowed}.")


def make_params(image_size=None, color_mode="auto", resize="crop", min_size=32,
                max_pixels=89_478_485, image_format="png", jpeg_quality=95,
                near_duplicates="drop", max_distance=4, validation_fraction=0.05,
                test_fraction=0.05, records_per_shard=2048, num_shards=None):
    """Validates prepare's options and returns them as one dict (also saved in dataset.json)."""
    _check("image_size", image_size,
           image_size is None or (isinstance(image_size, int) and not isinstance(image_size, bool)
                                  and image_size >= 8), "use an integer >= 8 or leave it unset")
    _check("color_mode", color_mode, color_mode in images.COLOR_MODES,
           f"use one of {list(images.COLOR_MODES)}")
    _check("resize", resize, resize in images.RESIZE_MODES,
           f"use one of {list(images.RESIZE_MODES)}")
    _check("min_size", min_size, isinstance(min_size, int) and min_size >= 1,
           "use a positive integer")
    _check("max_pixels", max_pixels, isinstance(max_pixels, int) and max_pixels >= 1,
           "use a positive integer")
    _check("image_format", image_format, image_format in images.FORMATS,
           f"use one of {list(images.FORMATS)}")
    _check("jpeg_quality", jpeg_quality, isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 100,
           "use an integer in [1, 100]")
    _check("near_duplicates", near_duplicates, near_duplicates in ("drop", "keep", "off"),
           "use 'drop' (one image per cluster), 'keep' (all, same split) or 'off'")
    _check("max_distance", max_distance, isinstance(max_distance, int) and 0 <= max_distance <= 16,
           "use an integer Hamming distance in [0, 16]")
    for name, v in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        _check(name, v, isinstance(v, (int, float)) and 0.0 <= v < 1.0, "use a fraction in [0, 1)")
    _check("validation_fraction + test_fraction", validation_fraction + test_fraction,
           validation_fraction + test_fraction < 1.0, "leave some data for train")
    _check("records_per_shard", records_per_shard,
           isinstance(records_per_shard, int) and records_per_shard >= 1, "use a positive integer")
    _check("num_shards", num_shards, num_shards is None or (isinstance(num_shards, int)
                                                            and num_shards >= 1),
           "use a positive integer or leave it unset (sized from records_per_shard)")
    return {
        "image_size": image_size, "color_mode": color_mode, "resize": resize,
        "min_size": min_size, "max_pixels": max_pixels, "image_format": image_format,
        "jpeg_quality": jpeg_quality, "near_duplicates": near_duplicates,
        "max_distance": max_distance, "validation_fraction": float(validation_fraction),
        "test_fraction": float(test_fraction), "records_per_shard": records_per_shard,
        "num_shards": num_shards,
    }


def spark_session(master="local[2]", app_name="keras-aigc prepare", conf=None):
    """A SparkSession (the existing one if any), with a clear error if pyspark is missing."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise ImportError("keras-aigc prepare runs on Apache Spark: pip install 'keras-aigc[spark]' "
                          "(needs Java 17: e.g. apt-get install openjdk-17-jre-headless).") from e
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress", "true")
    if master:
        builder = builder.master(master)
    for k, v in (conf or {}).items():
        builder = builder.config(k, v)
    return builder.getOrCreate()


# Executor-side functions (module level: Spark pickles them by reference).

def _read(item, params):
    return list(inputs.read_item(item, params))


def _band_rows(row, widths):
    sha, ph = row
    return [(key, (sha, ph)) for key in dedup.band_keys(ph, widths)]


def _pairs(group, max_distance):
    return dedup.close_pairs(list(group[1]), max_distance)


def _keep_smallest(a, b):
    return a if (a["sha"], a["id"]) <= (b["sha"], b["id"]) else b


def _write_partition(index, rows, output, layout):
    split, shard, count = layout[index]
    recs = sorted((r for _, r in rows), key=lambda r: (r["sha"], r["id"]))
    unique = []
    for r in recs:
        if not unique or unique[-1]["sha"] != r["sha"]:
            unique.append(r)
    yield writer.write_shard(output, split, shard, count, unique)


def _versions():
    out = {"python": platform.python_version()}
    for name in ("keras_aigc", "pyspark", "PIL", "numpy", "tensorflow"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "unknown")
        except ImportError:
            out[name] = None
    return out


def _write_json_atomic(path, obj):
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


SHARD_RE = re.compile(r"^(train|validation|test)-\d{5}-of-\d{5}\.tfrecord$")


def prepare(source, output, *, spark=None, master="local[2]", spark_conf=None,
            labels_csv=None, data_dir=None, num_partitions=None, **options):
    """Prepares SOURCE into sharded TFRecords and `dataset.json` under OUTPUT, on Spark.

    Args:
        source: str. `dir:PATH`, `npz:PATH`, `tfds:NAME` or `digits`.
        output: str. Output folder (created; stale shards of earlier runs are removed).
        spark: optional SparkSession to use (else one is created on `master`).
        master: str. Spark master URL when no session is given. Defaults to `local[2]`.
        spark_conf: dict of extra Spark settings.
        labels_csv: str. For `dir:` sources, a CSV of `path,label` rows (else labels are
            the first-level sub-folders).
        data_dir: str. tensorflow-datasets data directory for `tfds:`.
        num_partitions: int. Partitions of the read stage (default: 4 per core).
        **options: see `make_params` (image_size, color_mode, resize, min_size,
            max_pixels, image_format, jpeg_quality, near_duplicates, max_distance,
            validation_fraction, test_fraction, records_per_shard, num_shards).

    Returns:
        The `dataset.json` contents (a dict).

    Example:

    ```python
    from keras_aigc.data.prepare import prepare
    meta = prepare("dir:photos", "records/photos", image_size=64)
    print(meta["splits"]["train"]["num_examples"])
    ```
    """
    params = make_params(**options)
    items, class_names, unlabeled = inputs.list_items(source, labels_csv, data_dir)
    os.makedirs(output, exist_ok=True)
    own = spark is None
    if own:
        spark = spark_session(master, conf=spark_conf)
    try:
        meta = _run(spark, source, output, params, items, class_names, unlabeled, num_partitions)
    finally:
        if own:
            spark.stop()
    return meta


def ship_by_value():
    """Makes Spark pickle this package's functions by value, not by module reference.

    By reference, a Python worker would `import keras_aigc.data.prepare...`, which runs
    `keras_aigc/__init__.py` and so imports TensorFlow and Keras into every worker: tens
    of seconds per worker, and ~700 MB of RSS, over `spark.python.worker.memory`
    (512 MB), so every shuffle spilled to disk and every `gc.collect()` (after each task
    and each spill) walked TensorFlow's object graph. By value, executors need only numpy
    and Pillow (the package's executor-side modules import nothing else).
    """
    from pyspark import cloudpickle

    import keras_aigc.data.prepare as package

    cloudpickle.register_pickle_by_value(package)


def _run(spark, source, output, params, items, class_names, unlabeled, num_partitions):
    sc = spark.sparkContext
    ship_by_value()
    slices = num_partitions or max(1, min(len(items), 4 * sc.defaultParallelism))
    from pyspark import StorageLevel

    rows = sc.parallelize(items, slices).flatMap(lambda it: _read(it, params))
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _stages(sc, rows, source, output, params, class_names, unlabeled)
    finally:
        rows.unpersist()


def _merge_skips(a, b):
    return a[0] + b[0], sorted(a[1] + b[1])[:EXAMPLES_PER_REASON]


def _merge_unique(a, b):
    # Smallest (id, ...) wins (deterministic); the count sums the copies.
    keep = a if a[0] <= b[0] else b
    return keep[:4] + (a[4] + b[4],)


def _merge_stats(a, b):
    return a[0] + b[0], a[1] + b[1], a[2] | b[2]


def _stages(sc, rows, source, output, params, class_names, unlabeled):
    # Few actions: each one is a round of Spark tasks.
    skips = rows.filter(lambda r: r[0] == "skip").map(
        lambda r: (r[1], (1, [f"{r[2]}: {r[3]}"[:300]]))).reduceByKey(_merge_skips).collect()
    dropped = {reason: 0 for reason in images.REASONS}
    examples = {}
    for reason, (count, ex) in skips:
        dropped[reason] += count
        examples[reason] = ex
    dropped[images.UNLABELED] += len(unlabeled)
    if unlabeled:
        examples[images.UNLABELED] = [f"{u}: no class folder or CSV row"
                                      for u in unlabeled[:EXAMPLES_PER_REASON]]

    ok = rows.filter(lambda r: r[0] == "ok").map(lambda r: r[1])
    # Exact duplicates: one record per pixel hash (smallest id wins: deterministic).
    unique = ok.map(lambda r: (r["sha"], (r["id"], r["phash"], r["label"], tuple(r["shape"]), 1)))
    cached = unique.reduceByKey(_merge_unique).cache()
    n_valid, n_unique, shapes = cached.map(lambda kv: (kv[1][4], 1, {kv[1][3]})).fold(
        (0, 0, set()), _merge_stats)
    if n_valid == 0:
        raise ValueError(f"SOURCE {source!r}: no usable image (dropped: "
                         f"{ {k: v for k, v in dropped.items() if v} }; examples: {examples}).")
    dropped[images.EXACT_DUPLICATE] = n_valid - n_unique
    shapes = sorted(shapes)
    if len(shapes) != 1:
        raise ValueError(f"SOURCE {source!r}: images have {len(shapes)} different shapes "
                         f"({shapes[:5]}); pass --image-size N to resize them to N x N.")
    unique = cached.map(lambda kv: (kv[0], kv[1][1], kv[1][2]))

    # Near duplicates: LSH bands of the pHash, Hamming distance within band groups.
    cluster_of = {}
    clusters_info = {"clusters": 0, "images_in_clusters": 0, "largest": 1, "size_histogram": {}}
    if params["near_duplicates"] != "off":
        widths = dedup.band_widths(params["max_distance"])
        md = params["max_distance"]
        edges = (unique.map(lambda t: (t[0], t[1])).flatMap(lambda r: _band_rows(r, widths))
                 .groupByKey().flatMap(lambda g: _pairs(g, md)).distinct().collect())
        cluster_of = dedup.clusters(edges)
        sizes = {}
        for root in cluster_of.values():
            sizes[root] = sizes.get(root, 0) + 1
        hist = {}
        for s in sizes.values():
            hist[str(s)] = hist.get(str(s), 0) + 1
        clusters_info = {"clusters": len(sizes), "images_in_clusters": sum(sizes.values()),
                         "largest": max(sizes.values(), default=1),
                         "size_histogram": dict(sorted(hist.items(), key=lambda kv: int(kv[0])))}
    drop = {n for n, root in cluster_of.items() if n != root} \
        if params["near_duplicates"] == "drop" else set()
    dropped[images.NEAR_DUPLICATE] = len(drop)
    b_cluster = sc.broadcast(cluster_of)
    b_drop = sc.broadcast(drop)
    vf, tf_ = params["validation_fraction"], params["test_fraction"]

    def split_for(sha):
        return images.split_of(b_cluster.value.get(sha, sha), vf, tf_)

    counts = (unique.filter(lambda t: t[0] not in b_drop.value)
              .map(lambda t: ((split_for(t[0]), t[2]), 1)).reduceByKey(lambda a, b: a + b)
              .collectAsMap())
    cached.unpersist()
    per_split = {s: sum(v for (sp, _), v in counts.items() if sp == s) for s in SPLIT_ORDER}
    layout, offsets = [], {}
    for s in SPLIT_ORDER:
        if not per_split[s]:
            continue
        n = params["num_shards"] or max(1, math.ceil(per_split[s] / params["records_per_shard"]))
        n = min(n, per_split[s])
        offsets[s] = (len(layout), n)
        layout += [(s, i, n) for i in range(n)]
    b_offsets = sc.broadcast(offsets)

    def shard_key(r):
        s = split_for(r["sha"])
        start, n = b_offsets.value[s]
        return start + images.shard_of(r["sha"], n)

    keyed = (ok.filter(lambda r: r["sha"] not in b_drop.value)
             .map(lambda r: (shard_key(r), r))
             .partitionBy(len(layout), lambda k: k))
    shards = keyed.mapPartitionsWithIndex(
        lambda i, it: _write_partition(i, it, output, layout)).collect()
    shards.sort(key=lambda d: (SPLIT_ORDER.index(d["split"]), d["index"]))

    meta = _metadata(source, params, class_names, shapes[0], shards, dropped, examples,
                     clusters_info, n_valid + sum(dropped[r] for r in (
                         images.UNREADABLE, images.TRUNCATED, images.DECOMPRESSION_BOMB,
                         images.TOO_SMALL, images.UNLABELED)))
    keep = {d["file"] for d in shards}
    for name in os.listdir(output):
        if (SHARD_RE.match(name) and name not in keep) or (
                name.startswith(".") and name.endswith(".tmp")):
            os.remove(os.path.join(output, name))
    _write_json_atomic(os.path.join(output, DATASET_JSON), meta)
    return meta


def _metadata(source, params, class_names, shape, shards, dropped, examples, clusters_info,
              total):
    splits = {}
    for s in SPLIT_ORDER:
        mine = [d for d in shards if d["split"] == s]
        per_class = {}
        for d in mine:
            for label, n in d["per_class"].items():
                per_class[class_names[int(label)]] = per_class.get(class_names[int(label)], 0) + n
        splits[s] = {
            "num_examples": sum(d["records"] for d in mine),
            "per_class": {c: per_class.get(c, 0) for c in class_names},
            "shards": [{"file": d["file"], "records": d["records"], "sha256": d["sha256"]}
                       for d in mine],
        }
    return {
        "format_version": FORMAT_VERSION,
        "source": source,
        "image_shape": list(shape),
        "image_format": params["image_format"],
        "features": {"image": "bytes (encoded image_format, or raw uint8 HWC)",
                     "label": "int64", "hash": "bytes (sha256 hex of the decoded pixels)"},
        "class_names": list(class_names),
        "num_classes": len(class_names),
        "num_inputs": int(total),
        "splits": splits,
        "dropped": dict(sorted(dropped.items())),
        "dropped_examples": {k: v for k, v in sorted(examples.items())},
        "near_duplicate_clusters": clusters_info,
        "parameters": params,
        "versions": _versions(),
    }
