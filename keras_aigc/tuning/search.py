"""`keras_aigc.tuning.search`: one hyperparameter search over a run config."""

import csv
import json
import os
import shutil
import sys

ALGORITHMS = ("random", "bayesian", "hyperband")
INSTALL = "pip install 'keras-aigc[tune]'  (or: pip install keras-tuner)"


def require_keras_tuner():
    """Imports `keras_tuner`, or raises ImportError with the install command."""
    try:
        import keras_tuner
    except ImportError as e:
        raise ImportError(f"keras-aigc tune needs KerasTuner, which is not installed. "
                          f"Install it with: {INSTALL}") from e
    return keras_tuner


def is_distributed():
    """True when KerasTuner's chief/worker variables are set (`KERASTUNER_ORACLE_IP`)."""
    return "KERASTUNER_ORACLE_IP" in os.environ


def is_chief():
    """The process that writes the summary: the chief, or the only tuner."""
    return not is_distributed() or "chief" in os.environ.get("KERASTUNER_TUNER_ID", "")


def make_oracle(space, algorithm, max_trials, max_epochs=None, seed=None):
    """The KerasTuner oracle for `algorithm` ("random", "bayesian" or "hyperband")."""
    kt = require_keras_tuner()
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not supported. Choose one of "
                         f"{list(ALGORITHMS)}.")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"--trials must be an integer >= 1, got {max_trials!r}.")
    objective = kt.Objective(space.objective, space.direction)
    if algorithm == "random":
        return kt.oracles.RandomSearchOracle(objective=objective, max_trials=max_trials,
                                             seed=seed)
    if algorithm == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(objective=objective,
                                                     max_trials=max_trials, seed=seed)
    if "training.epochs" in space.hyperparameters:
        raise ValueError("algorithm='hyperband' sets training.epochs of each trial itself; "
                         "remove training.epochs from the search space.")
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 2:
        raise ValueError(f"hyperband needs max_epochs >= 2 (the config's training.epochs or "
                         f"--max-epochs), got {max_epochs!r}.")
    return kt.oracles.HyperbandOracle(objective=objective, max_epochs=max_epochs, factor=3,
                                      seed=seed)


def trial_rows(tuner):
    """One dict per trial of the chief's oracle, best first (failed trials last)."""
    space = tuner.space
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        run_dir = tuner.trial_run_dir(trial_id)
        record = {}
        if os.path.isfile(os.path.join(run_dir, "trial.json")):
            with open(os.path.join(run_dir, "trial.json")) as f:
                record = json.load(f)
        row = {"trial": trial_id, "tuner": record.get("tuner_id", ""),
               "status": str(trial.status)}
        for key in space.hyperparameters:
            row[key] = trial.hyperparameters.values.get(key)
        if "tuner/epochs" in trial.hyperparameters.values:
            row["training.epochs"] = trial.hyperparameters.values["tuner/epochs"]
        row[space.objective] = trial.score
        row["run_dir"] = run_dir
        rows.append(row)
    sign = 1 if space.direction == "min" else -1
    rows.sort(key=lambda r: (r[space.objective] is None,
                             sign * (r[space.objective] or 0.0)))
    return rows


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def markdown_table(rows):
    columns = [c for c in rows[0] if c != "run_dir"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_summary(tuner, directory, stream):
    """`trials.csv`, `trials.md`, `best_config.yaml`, `best_samples.png` and `best.json`."""
    rows = trial_rows(tuner)
    if not rows or rows[0][tuner.space.objective] is None:
        raise RuntimeError(f"The search in {directory} has no completed trial; see the "
                           "trial logs above.")
    with open(os.path.join(directory, "trials.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(rows)
    with open(os.path.join(directory, "trials.md"), "w") as f:
        f.write(table + "\n")
    best_yaml = os.path.join(directory, "best_config.yaml")
    best = tuner.write_best_config(best_yaml)
    best_run = tuner.trial_run_dir(best.trial_id)
    grid = os.path.join(best_run, "samples", "final.png")
    best_grid = None
    if os.path.isfile(grid):
        best_grid = os.path.join(directory, "best_samples.png")
        shutil.copyfile(grid, best_grid)
    summary = {"objective": tuner.space.objective, "direction": tuner.space.direction,
               "best_trial": best.trial_id, "best_value": best.score,
               "best_run_dir": best_run, "best_config": best_yaml,
               "best_samples": best_grid, "num_trials": len(rows),
               "trials": [{k: v for k, v in r.items()} for r in rows]}
    with open(os.path.join(directory, "best.json"), "w") as f:
        json.dump(summary, f, indent=2, default=str)
    print("\n" + table, file=stream)
    print(f"\nBest trial {best.trial_id}: {tuner.space.objective} = {best.score:.6g}",
          file=stream)
    print(f"  best config:  {best_yaml}  (keras-aigc train {best_yaml})", file=stream)
    print(f"  best run:     {best_run}", file=stream)
    if best_grid:
        print(f"  best samples: {best_grid}", file=stream)
    return summary


def search(config, space, directory, algorithm="random", max_trials=10, max_epochs=None,
           seed=None, stream=None):
    """Runs a search; every trial is a run directory under `<directory>/trials`.

    Args:
        config: dict. A validated run config.
        space: `keras_aigc.tuning.SearchSpace`. Checked against `config` before any trial.
        directory: str. The search directory (shared by the chief and all workers).
        algorithm: str. `"random"`, `"bayesian"` or `"hyperband"`.
        max_trials: int. Trials of random and Bayesian search (Hyperband derives its own
            count from `max_epochs`).
        max_epochs: int or None. Hyperband's largest epoch budget; defaults to the
            config's `training.epochs`.
        seed: int or None. The oracle's seed.
        stream: file. Defaults to `sys.stdout`.

    Returns:
        The summary dict (also `<directory>/best.json`) on the chief or a single tuner;
        None on a worker.

    Example:

    ```python
    space = keras_aigc.tuning.SearchSpace({"model.d_steps": {"choices": [1, 2]}})
    keras_aigc.tuning.search(config, space, "runs/search", max_trials=2)
    ```
    """
    stream = stream or sys.stdout
    require_keras_tuner()
    space.check(config)
    if max_epochs is None:
        max_epochs = int((config.get("training") or {}).get("epochs", 1))
    oracle = make_oracle(space, algorithm, max_trials, max_epochs=max_epochs, seed=seed)
    from keras_aigc.tuning.config_hyper_model import ConfigHyperModel
    from keras_aigc.tuning.config_tuner import ConfigTuner

    os.makedirs(directory, exist_ok=True)
    tuner = ConfigTuner(oracle, ConfigHyperModel(config, space), directory, stream=stream)
    role = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    if is_distributed():
        where = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ.get('KERASTUNER_ORACLE_PORT')}"
        print(f"Distributed search: {role} ({'oracle' if is_chief() else 'worker'} at "
              f"{where})", file=stream)
    tuner.search()
    if not is_chief():
        print(f"{role}: no trials left; the chief writes the summary.", file=stream)
        return None
    return write_summary(tuner, directory, stream)
