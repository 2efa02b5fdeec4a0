"""`keras-aigc prepare SOURCE OUTPUT`: sharded TFRecords and dataset.json, on Apache Spark."""

import json


def add_parser(subparsers):
    p = subparsers.add_parser(
        "prepare", help="Prepare images into sharded TFRecords on Apache Spark.",
        description=(
            "Decode, validate, convert, resize and de-duplicate (exact and near-duplicate) "
            "images, split them deterministically by content and write TFRecord shards per "
            "split plus dataset.json. Runs on Apache Spark (pip install 'keras-aigc[spark]', "
            "Java 17): locally with --master 'local[N]', or on a cluster with --master URL or "
            "spark-submit. Train on the result with data: records:OUTPUT."))
    p.add_argument("source", help="dir:PATH (labels from first-level sub-folders or "
                   "--labels-csv), npz:PATH (keras.datasets layout), tfds:NAME or digits.")
    p.add_argument("output", help="Output folder for the shards and dataset.json.")
    p.add_argument("--image-size", type=int, default=None,
                   help="Resize every image to N x N (required when sizes differ).")
    p.add_argument("--resize", choices=["crop", "pad"], default="crop",
                   help="crop: scale the short side to N and center-crop; pad: scale the long "
                   "side to N and pad with black (default crop).")
    p.add_argument("--color-mode", choices=["rgb", "grayscale", "auto"], default="auto",
                   help="auto keeps grayscale array sources grayscale and makes files RGB.")
    p.add_argument("--min-size", type=int, default=32,
                   help="Drop images whose shorter side is below this (default 32).")
    p.add_argument("--max-pixels", type=int, default=89_478_485,
                   help="Drop images with more pixels than this as decompression bombs "
                   "(checked from the header, default 89,478,485 like Pillow).")
    p.add_argument("--format", dest="image_format", choices=["png", "jpeg", "raw"],
                   default="png", help="How images are stored in the records (default png).")
    p.add_argument("--jpeg-quality", type=int, default=95)
    p.add_argument("--near-duplicates", choices=["drop", "keep", "off"], default="drop",
                   help="drop: keep one image per near-duplicate cluster; keep: keep all, "
                   "in one split; off: no near-duplicate search (default drop).")
    p.add_argument("--max-distance", type=int, default=4,
                   help="pHash Hamming distance of near duplicates (default 4).")
    p.add_argument("--validation-fraction", type=float, default=0.05)
    p.add_argument("--test-fraction", type=float, default=0.05)
    p.add_argument("--records-per-shard", type=int, default=2048)
    p.add_argument("--num-shards", type=int, default=None,
                   help="Shards per split (default: from --records-per-shard).")
    p.add_argument("--labels-csv", default=None,
                   help="For dir: sources, a CSV of path,label rows (paths relative to PATH).")
    p.add_argument("--data-dir", default=None, help="tensorflow-datasets data directory.")
    p.add_argument("--master", default="local[2]",
                   help="Spark master URL (default local[2]; e.g. spark://host:7077, yarn).")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="Extra Spark setting (repeatable), e.g. spark.executor.memory=4g.")
    p.add_argument("--partitions", type=int, default=None,
                   help="Partitions of the read stage (default 4 per core).")
    p.set_defaults(func=main)
    return p


def main(args):
    from keras_aigc.data.prepare import prepare

    conf = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--conf expects KEY=VALUE, got {item!r}.")
        conf[key] = value
    if args.partitions is not None and args.partitions < 1:
        raise ValueError(f"--partitions must be a positive integer, got {args.partitions}.")
    meta = prepare(
        args.source, args.output, master=args.master, spark_conf=conf,
        labels_csv=args.labels_csv, data_dir=args.data_dir, num_partitions=args.partitions,
        image_size=args.image_size, color_mode=args.color_mode, resize=args.resize,
        min_size=args.min_size, max_pixels=args.max_pixels, image_format=args.image_format,
        jpeg_quality=args.jpeg_quality, near_duplicates=args.near_duplicates,
        max_distance=args.max_distance, validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction, records_per_shard=args.records_per_shard,
        num_shards=args.num_shards)
    summary = {
        "output": args.output,
        "image_shape": meta["image_shape"],
        "splits": {k: v["num_examples"] for k, v in meta["splits"].items()},
        "dropped": {k: v for k, v in meta["dropped"].items() if v},
        "near_duplicate_clusters": meta["near_duplicate_clusters"]["clusters"],
    }
    print(json.dumps(summary, indent=1))
    return 0
