"""The search space of `keras-aigc tune`: a YAML file over dotted config keys.

```yaml
objective: fid              # a metric name (see `source`)
direction: min              # min or max; default from the name (fid, kid, nll, loss: min)
source: history             # history: the last value `keras-aigc train` logged (history.json);
                            # evaluate: a key of `keras-aigc evaluate`'s metrics.json
evaluate: {num_samples: 500, features: domain}   # flags of `keras-aigc evaluate` (source: evaluate)
hyperparameters:
  compile.g_optimizer.config.learning_rate: {min: 1.0e-5, max: 1.0e-3, sampling: log}
  model.d_steps: {choices: [1, 2, 3]}
  training.epochs: {min: 1, max: 4}
```

Each hyperparameter names a dotted key of the run config (`model.*`, `data.*`,
`compile.*`, `training.*`), with either `choices` (a list of values of one type) or `min`
and `max` (integers give a `keras_tuner` `Int`, else a `Float`; optional `step` and
`sampling`: linear, log or reverse_log). Every entry is checked before any trial: each
choice and both ends of each range are applied to the config and the config is validated,
so an unknown key or a value of the wrong type fails naming the key.
"""

import copy

from keras_aigc.cli.config import ConfigError, read_yaml, validate

SOURCES = ("history", "evaluate")
DIRECTIONS = ("min", "max")
SAMPLINGS = ("linear", "log", "reverse_log")
SPACE_KEYS = ("objective", "direction", "source", "evaluate", "hyperparameters")
# Names whose smaller value is better; everything else must state its direction.
_MIN_WORDS = ("fid", "kid", "nll", "loss", "bits_per_dim")
_MAX_WORDS = ("elbo", "precision", "recall", "accuracy", "inception_score", "iwae")
# Flags of `keras-aigc evaluate` a space may set, with their types.
EVALUATE_OPTIONS = {"num_samples": int, "nll_samples": int, "batch_size": int, "seed": int,
                    "features": str, "features_dir": str, "fid_weights": str,
                    "inception_weights": str, "cache_dir": str}


def default_direction(name):
    """`"min"` or `"max"` for a known metric name, else None."""
    base = name[4:] if name.startswith("val_") else name
    base = base[5:] if base.startswith("test_") else base
    if any(w in base for w in _MIN_WORDS):
        return "min"
    if any(w in base for w in _MAX_WORDS):
        return "max"
    return None


def set_dotted(config, key, value):
    """A copy of `config` with the dotted `key` set to `value`.

    A key of two parts (`section.name`) may create the section; a deeper key must land in
    a mapping that the config already has (e.g. `compile.g_optimizer.config`).
    """
    config = copy.deepcopy(config)
    parts = key.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None and depth == 0:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[:depth + 1])
            raise ConfigError(
                f"{where} is not a mapping in the base config, so {key} has nowhere to go; "
                f"write {where} in the config first (e.g. an optimizer as {{class_name: Adam, "
                f"config: {{learning_rate: 0.001}}}}).")
        node = child
    node[parts[-1]] = value
    return config


def _check_optimizers(config):
    """Deserializes every optimizer mapping of `compile`, so a bad nested key fails now."""
    import keras

    for name, value in (config.get("compile") or {}).items():
        if isinstance(value, dict) and "class_name" in value:
            try:
                keras.optimizers.deserialize(copy.deepcopy(value))
            except Exception as e:
                raise ConfigError(f"compile.{name}: not a valid optimizer ({e}).") from e


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class SearchSpace:
    """Hyperparameters over dotted config keys, and the objective of the search.

    Args:
        hyperparameters: dict. `{dotted key: {"choices": [...]} or {"min": a, "max": b,
            "step": s, "sampling": "linear"|"log"|"reverse_log"}}`.
        objective: str. The metric to optimise. Defaults to `"fid"`.
        direction: str or None. `"min"` or `"max"`; None takes it from the metric name.
        source: str. `"history"` (last logged value of `keras-aigc train`) or `"evaluate"`
            (a key of `keras-aigc evaluate`'s output). Defaults to `"history"`.
        evaluate: dict or None. Flags of `keras-aigc evaluate` (underscored), for
            `source="evaluate"`.
        where: str. Names the origin in error messages. Defaults to `"space"`.

    Example:

    ```python
    space = keras_aigc.tuning.SearchSpace.from_file("space.yaml")
    space.check(config)  # fails naming the key, before any trial
    ```
    """

    def __init__(self, hyperparameters, objective="fid", direction=None, source="history",
                 evaluate=None, where="space"):
        self.where = where
        if not isinstance(hyperparameters, dict) or not hyperparameters:
            raise ConfigError(f"{where}: hyperparameters: expected a non-empty mapping of "
                              "dotted config keys to {choices: [...]} or {min: .., max: ..}, "
                              f"got {hyperparameters!r}.")
        if not isinstance(objective, str) or not objective:
            raise ConfigError(f"{where}: objective: expected a metric name, got "
                              f"{objective!r}.")
        if source not in SOURCES:
            raise ConfigError(f"{where}: source: unknown source {source!r}. Choose one of "
                              f"{list(SOURCES)}.")
        direction = direction if direction is not None else default_direction(objective)
        if direction not in DIRECTIONS:
            raise ConfigError(f"{where}: direction: expected one of {list(DIRECTIONS)}, got "
                              f"{direction!r} (state it for objective {objective!r}).")
        evaluate = dict(evaluate or {})
        for key, value in evaluate.items():
            kind = EVALUATE_OPTIONS.get(key)
            if kind is None:
                raise ConfigError(f"{where}: evaluate.{key}: unknown option. Allowed: "
                                  f"{sorted(EVALUATE_OPTIONS)}.")
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ConfigError(f"{where}: evaluate.{key}: expected {kind.__name__}, got "
                                  f"{value!r}.")
        if evaluate and source != "evaluate":
            raise ConfigError(f"{where}: evaluate: options given but source is {source!r}; "
                              "set source: evaluate.")
        self.objective = objective
        self.direction = direction
        self.source = source
        self.evaluate = evaluate
        self.hyperparameters = {}
        for key, spec in hyperparameters.items():
            self.hyperparameters[key] = self._parse(key, spec)

    @classmethod
    def from_file(cls, path):
        raw = read_yaml(path, "Search space")
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping at the top, got "
                              f"{type(raw).__name__}.")
        for key in raw:
            if key not in SPACE_KEYS:
                raise ConfigError(f"{path}: {key}: unknown key. Allowed keys: "
                                  f"{list(SPACE_KEYS)}.")
        return cls(raw.get("hyperparameters"), objective=raw.get("objective", "fid"),
                   direction=raw.get("direction"), source=raw.get("source", "history"),
                   evaluate=raw.get("evaluate"), where=path)

    def _fail(self, key, message):
        return ConfigError(f"{self.where}: hyperparameters.{key}: {message}")

    def _parse(self, key, spec):
        parts = key.split(".") if isinstance(key, str) else []
        if len(parts) < 2 or not all(parts):
            raise self._fail(key, "expected a dotted config key such as "
                                  "training.epochs or compile.optimizer.config.learning_rate.")
        if not isinstance(spec, dict):
            raise self._fail(key, f"expected {{choices: [...]}} or {{min: .., max: ..}}, got "
                                  f"{spec!r}.")
        if "choices" in spec:
            extra = set(spec) - {"choices"}
            if extra:
                raise self._fail(key, f"unknown fields {sorted(extra)} next to choices.")
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices:
                raise self._fail(key, f"choices must be a non-empty list, got {choices!r}.")
            kinds = {float if _is_number(c) and isinstance(c, float) else type(c)
                     for c in choices}
            if kinds <= {int, float}:
                kinds = {float} if float in kinds else {int}
            if len(kinds) != 1 or not kinds <= {int, float, str, bool}:
                raise self._fail(key, f"choices must all be of one type (int, float, str or "
                                      f"bool), got {choices!r}.")
            if len(set(choices)) != len(choices):
                raise self._fail(key, f"choices has duplicates: {choices!r}.")
            if kinds == {float}:
                choices = [float(c) for c in choices]
            return {"choices": choices}
        unknown = set(spec) - {"min", "max", "step", "sampling"}
        if unknown:
            raise self._fail(key, f"unknown fields {sorted(unknown)}; use choices, or min, "
                                  "max, step and sampling.")
        if "min" not in spec or "max" not in spec:
            raise self._fail(key, "a range needs both min and max (or give choices).")
        lo, hi, step = spec["min"], spec["max"], spec.get("step")
        for name, v in (("min", lo), ("max", hi), ("step", step)):
            if v is not None and not _is_number(v):
                raise self._fail(key, f"{name} must be a number, got {v!r}.")
        if lo > hi:
            raise self._fail(key, f"min={lo!r} is greater than max={hi!r}.")
        if step is not None and step <= 0:
            raise self._fail(key, f"step must be positive, got {step!r}.")
        sampling = spec.get("sampling", "linear")
        if sampling not in SAMPLINGS:
            raise self._fail(key, f"sampling: unknown {sampling!r}. Choose one of "
                                  f"{list(SAMPLINGS)}.")
        if sampling != "linear" and lo <= 0:
            raise self._fail(key, f"{sampling} sampling needs min > 0, got {lo!r}.")
        is_int = all(isinstance(v, int) for v in (lo, hi) + ((step,) if step else ()))
        return {"min": lo, "max": hi, "step": step, "sampling": sampling,
                "type": "int" if is_int else "float"}

    def corner_values(self, key):
        """The values checked before the search: every choice, or both ends of a range."""
        spec = self.hyperparameters[key]
        return spec["choices"] if "choices" in spec else [spec["min"], spec["max"]]

    def check(self, config):
        """Validates the config with every choice and range end applied, one key at a time;
        raises ConfigError naming the hyperparameter."""
        for key in self.hyperparameters:
            for value in self.corner_values(key):
                try:
                    trial = set_dotted(config, key, value)
                    validate(trial)
                    _check_optimizers(trial)
                except ConfigError as e:
                    raise self._fail(key, f"value {value!r} does not fit the config: {e}") \
                        from e
        return self

    def declare(self, hp):
        """Declares the hyperparameters on a `keras_tuner.HyperParameters`; returns their
        current values as `{dotted key: value}`."""
        values = {}
        for key, spec in self.hyperparameters.items():
            if "choices" in spec:
                values[key] = hp.Choice(key, spec["choices"])
            elif spec["type"] == "int":
                values[key] = hp.Int(key, spec["min"], spec["max"], step=spec["step"],
                                     sampling=spec["sampling"])
            else:
                values[key] = hp.Float(key, float(spec["min"]), float(spec["max"]),
                                       step=spec["step"], sampling=spec["sampling"])
        return values

    def apply(self, config, values):
        """`config` with each `{dotted key: value}` set (keys outside the space ignored)."""
        for key, value in values.items():
            if key in self.hyperparameters:
                config = set_dotted(config, key, value)
        return config
