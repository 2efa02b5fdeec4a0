"""`keras-aigc tune CONFIG --space SPACE.yaml`: hyperparameter search with KerasTuner."""

import datetime
import os
import sys

from keras_aigc.cli import config as config_lib

EPILOG = """\
distributed search (KerasTuner's chief/worker mode): start one chief and N workers with
the same arguments and the same --output (a shared directory), e.g. on 127.0.0.1:
  KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
      keras-aigc tune CONFIG --space SPACE.yaml --trials 20 --output runs/search &
  KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
      keras-aigc tune CONFIG --space SPACE.yaml --trials 20 --output runs/search &
  KERASTUNER_TUNER_ID=tuner1  ... (one per worker)
The chief serves the oracle and writes the summary; the workers run the trials.
"""


def add_parser(subparsers):
    import argparse

    p = subparsers.add_parser(
        "tune", help="Search hyperparameters of a config with KerasTuner.",
        description="Search dotted config keys (the space file) with KerasTuner. Every "
                    "trial is a normal run directory in OUTPUT/trials; OUTPUT gets "
                    "trials.csv/trials.md (the table), best_config.yaml (runnable with "
                    "`keras-aigc train`), best_samples.png and best.json.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="Path to a YAML run config (see configs/).")
    p.add_argument("--space", required=True,
                   help="YAML search space: objective, direction, source, hyperparameters "
                        "(see keras_aigc/tuning/search_space.py and configs/tune_*.yaml).")
    p.add_argument("--trials", type=int, default=10,
                   help="Trials of random/bayesian search (default: 10).")
    p.add_argument("--algorithm", choices=("random", "bayesian", "hyperband"),
                   default="bayesian", help="KerasTuner oracle (default: bayesian).")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="Hyperband's largest epoch budget (default: training.epochs).")
    p.add_argument("--seed", type=int, default=None, help="The oracle's seed.")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="Override a base config value by dotted path (repeatable).")
    p.add_argument("--output", default=None,
                   help="Search directory (default: runs/tune-<config name>-<timestamp>; "
                        "required in distributed mode).")
    p.set_defaults(func=main)
    return p


def main(args):
    try:
        from keras_aigc import tuning

        tuning.require_keras_tuner()
    except ImportError as e:
        print(f"keras-aigc tune: error: {e}", file=sys.stderr)
        return 2
    config = config_lib.load_config(args.config, args.overrides)
    space = tuning.SearchSpace.from_file(args.space)
    if args.output is None:
        from keras_aigc.tuning.search import is_distributed

        if is_distributed():
            raise config_lib.ConfigError(
                "--output: required in distributed mode (KERASTUNER_ORACLE_IP is set), so "
                "that the chief and every worker use the same search directory.")
        stem = os.path.splitext(os.path.basename(args.config))[0]
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        args.output = os.path.join("runs", f"tune-{stem}-{stamp}")
    import keras_tuner

    try:
        tuning.search(config, space, args.output, algorithm=args.algorithm,
                      max_trials=args.trials, max_epochs=args.max_epochs, seed=args.seed)
    except keras_tuner.errors.FatalError as e:  # e.g. an objective no trial can report
        print(f"keras-aigc tune: error: {e}", file=sys.stderr)
        return 2
    return 0
