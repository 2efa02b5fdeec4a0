"""`keras-aigc train-features CONFIG`: train the domain classifier used as metric features."""

import sys

from keras_aigc.cli import config as config_lib


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train-features",
        help="Train the domain classifier whose features the metrics use.",
        description="Train a small CNN classifier on the train split of the config's data "
                    "source. Its penultimate layer gives the features of FID, KID and "
                    "precision/recall in `keras-aigc evaluate`; its test-split accuracy is "
                    "recorded next to it in domain_classifier.json.")
    p.add_argument("config", help="Path to a YAML run config; its data: section is used.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a config value by dotted path (parsed as YAML).")
    p.add_argument("--output", default=None,
                   help="Directory to save to (default: the cache directory of the data "
                        "source under $KERAS_AIGC_CACHE or ~/.cache/keras_aigc, where "
                        "`keras-aigc evaluate` finds it). A run directory's features/ "
                        "sub-directory also works.")
    p.add_argument("--epochs", type=int, default=2, help="Training epochs (default: 2).")
    p.add_argument("--batch-size", type=int, default=128, help="Batch size (default: 128).")
    p.add_argument("--seed", type=int, default=0, help="Seed (default: 0).")
    p.set_defaults(func=main)
    return p


def split_kwargs(data_section):
    """The data arguments that decide the splits (so evaluate finds the same classifier)."""
    from keras_aigc.metrics.features.domain_features import SPLIT_KEYS

    return {k: v for k, v in data_section.items() if k in SPLIT_KEYS}


def main(args, stream=None):
    stream = stream or sys.stdout
    from keras_aigc.metrics.features import train_domain_classifier

    if args.epochs < 1:
        raise ValueError(f"--epochs must be a positive integer, got {args.epochs}.")
    config = config_lib.load_config(args.config, args.overrides)
    data = dict(config["data"])
    _, record = train_domain_classifier(
        data["source"], directory=args.output, epochs=args.epochs,
        batch_size=args.batch_size, seed=args.seed, **split_kwargs(data))
    print(f"\nDomain classifier: {record['directory']}", file=stream)
    print(f"  test accuracy: {record['test_accuracy']:.4f} on {record['test_examples']} "
          "test images", file=stream)
    return 0
