"""The `keras-aigc` command: one sub-command per module in keras_aigc/cli/."""

import argparse
import importlib
import sys

# Each module exposes add_parser(subparsers), which sets `func` on its parser.
COMMANDS = ["train", "sample", "export", "train-features", "evaluate", "publish"]
COMMANDS += ["credentials", "verify-image", "detect-watermark", "explore"]
COMMANDS += ["finetune"]
COMMANDS += ["prepare"]
COMMANDS += ["tune"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-aigc",
        description="Train, sample and export generative models built on Keras 3.")
    from keras_aigc import __version__

    parser.add_argument("--version", action="version", version=f"keras-aigc {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"keras_aigc.cli.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from keras_aigc.cli.config import ConfigError

    try:
        return args.func(args) or 0
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"keras-aigc {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
