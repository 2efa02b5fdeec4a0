"""Run configs: YAML that maps onto constructor and function arguments.

There is no parallel schema: the allowed keys and their types come from the signatures
of what each section configures (the model class, `keras_aigc.data.load`, the model's
`compile`, and `TrainingConfig`). A bad key or type fails before any training starts,
naming its dotted path.
"""

import copy
import dataclasses
import inspect
import os
import typing

import yaml

SECTIONS = ("model", "data", "compile", "training")
# Sections no command reads: refused with where their settings go instead.
UNREAD_SECTIONS = {
    "export": "export settings are flags of `keras-aigc export RUN_DIR` (--formats, "
              "--quantize, --batch-sizes, --output, --name)",
    "evaluate": "evaluation settings are flags of `keras-aigc evaluate RUN_DIR` "
                "(--num-samples, --features, ...)",
}


class ConfigError(ValueError):
    """A config value is wrong; the message starts with its dotted path."""


@dataclasses.dataclass
class TrainingConfig:
    """The `training:` section.

    Args:
        epochs: int. Epochs to train.
        steps_per_epoch: int or None. Cap on steps per epoch (None: the whole dataset).
        sample_every: int. Epoch interval of sample grids.
        num_samples: int. Images in each sample grid.
        validation: bool. Evaluate on the validation split each epoch.
        seed: int. Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`).
        verbose: str or int. Keras progress display: "auto", 0, 1 or 2.
        strategy: str. `keras_aigc.distribute.get_strategy` spec: "auto", "default",
            "one_device[:DEVICE]", "mirrored[:DEVICES]", "multi_worker" or "tpu[:ADDRESS]".
        batch_size_mode: str. How `data.batch_size` is read: "global" (the batch of one
            step over all replicas) or "per_replica" (multiplied by the number of
            replicas to get the global batch).
        cluster_timeout: float. Seconds a multi-worker task waits for its peers at start.
        backup_freq: str, int or None. "epoch", a step interval, or None for no backup
            (`keras_aigc.callbacks.BackupAndRestore` in `<run>/backup`).
        mixed_precision: str or None. A Keras dtype policy such as "mixed_float16" or
            "mixed_bfloat16"; None keeps float32; "auto" picks mixed_bfloat16 on a TPU,
            a GPU with compute capability >= 8.0 or a CPU with AMX/AVX512_BF16, else
            float32 (`keras_aigc.utils.mixed_precision.auto_policy`).
        jit_compile: bool or str. XLA for the train step; "auto" turns it on only with a
            GPU or TPU (on CPU XLA measured 1.8x slower on the TF-tutorial DCGAN).
        steps_per_execution: int. Train steps per `tf.function` call (TPU: 32-100).
        fid_every: int or None. Epochs between FID measurements during training; None
            follows `sample_every`, 0 turns FID off (see keras_aigc/cli/train_monitoring.py).
        fid_features: str. "auto" (the data's domain classifier if one exists, else off),
            "domain", "standard" (FIDInception) or "off" (or false).
        fid_samples: int. Generated images per FID measurement.
        interpolation_rows: int. Rows of the TensorBoard image `interpolation` logged with
            each sample grid (slerp paths between fixed latents; models without a latent
            skip it); 0 turns it off.
        interpolation_steps: int. Images per interpolation row (>= 2).
    """

    epochs: int = 1
    steps_per_epoch: typing.Optional[int] = None
    sample_every: int = 1
    num_samples: int = 64
    validation: bool = True
    seed: int = 0
    verbose: typing.Union[str, int] = "auto"
    strategy: str = "auto"
    batch_size_mode: str = "global"
    cluster_timeout: float = 120.0
    backup_freq: typing.Union[str, int, None] = "epoch"
    mixed_precision: typing.Optional[str] = None
    jit_compile: typing.Union[bool, str] = "auto"
    steps_per_execution: int = 1
    fid_every: typing.Optional[int] = None
    fid_features: typing.Union[str, bool] = "auto"
    fid_samples: int = 1000
    interpolation_rows: int = 4
    interpolation_steps: int = 8


def _type_ok(value, annotation, default):
    """True when `value` fits the annotation, or (no annotation) the default's type."""
    if value is None:
        return default is None or _allows_none(annotation)
    if annotation is not inspect.Parameter.empty and annotation is not None:
        return _fits(value, annotation)
    if default is inspect.Parameter.empty or default is None:
        return True
    if not _fits(value, type(default)):
        return False
    kind = _element_type(default)
    # Elements like the default's: g_filters=["a"] fails where (256, 128) is the default.
    return kind is None or all(_fits(v, kind) for v in value)


def _element_type(default):
    """The one type of a non-empty list/tuple default's elements, else None."""
    if not isinstance(default, (list, tuple)) or not default:
        return None
    kinds = {type(d) for d in default}
    return kinds.pop() if len(kinds) == 1 else None


def _allows_none(annotation):
    return type(None) in typing.get_args(annotation)


def _fits(value, annotation):
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        return any(_fits(value, a) for a in typing.get_args(annotation) if a is not type(None))
    if annotation is typing.Any:
        return True
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (tuple, list):
        return isinstance(value, (list, tuple))
    if annotation is bool:
        return isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def check_kwargs(section, kwargs, fn, skip=()):
    """Checks that `kwargs` fit the signature of `fn`; raises ConfigError naming the key."""
    if not isinstance(kwargs, dict):
        raise ConfigError(f"{section}: expected a mapping, got {type(kwargs).__name__}.")
    sig = inspect.signature(fn)
    params = {k: p for k, p in sig.parameters.items()
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and k != "self"}
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    for key, value in kwargs.items():
        if key in skip:
            continue
        if key not in params:
            raise ConfigError(
                f"{section}.{key}: unknown key. Allowed keys: {sorted(set(params) - set(skip))}."
            )
        p = params[key]
        annotation = hints.get(key, p.annotation)
        if not _type_ok(value, annotation, p.default):
            expected = (annotation if annotation is not inspect.Parameter.empty
                        else type(p.default).__name__)
            if annotation is inspect.Parameter.empty and _element_type(p.default):
                expected = f"a list of {_element_type(p.default).__name__}"
            raise ConfigError(
                f"{section}.{key}: expected {getattr(expected, '__name__', expected)}, got "
                f"{type(value).__name__} {value!r}."
            )


def model_signature_fns(cls):
    """The functions whose parameters a model section may set (the class and its bases)."""
    return [c.__init__ for c in cls.__mro__ if c.__module__.startswith("keras_aigc")]


def check_model_section(section):
    from keras_aigc import models

    if not isinstance(section, dict):
        raise ConfigError(f"model: expected a mapping, got {type(section).__name__}.")
    name = section.get("name")
    if name is None:
        raise ConfigError(f"model.name: missing. Choose one of {sorted(models.MODELS)}.")
    if name not in models.MODELS:
        raise ConfigError(f"model.name: unknown model {name!r}. Choose one of "
                          f"{sorted(models.MODELS)}.")
    cls = models.MODELS[name]
    preset = section.get("preset")
    presets = getattr(cls, "presets", {}) or {}
    if preset is not None and preset not in presets:
        raise ConfigError(f"model.preset: unknown preset {preset!r} for {name}. Known: "
                          f"{sorted(presets)}.")
    kwargs = {k: v for k, v in section.items() if k not in ("name", "preset")}
    allowed = {}
    for fn in model_signature_fns(cls):
        for k, p in inspect.signature(fn).parameters.items():
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                allowed.setdefault(k, (fn, p))
    for key, value in kwargs.items():
        if key not in allowed:
            raise ConfigError(f"model.{key}: unknown key for {name}. Allowed keys: "
                              f"{sorted(['name', 'preset', *allowed])}.")
        fn, p = allowed[key]
        if not _type_ok(value, p.annotation, p.default):
            kind = _element_type(p.default)
            expected = f"a list of {kind.__name__}" if kind else type(p.default).__name__
            raise ConfigError(f"model.{key}: expected {expected}, got "
                              f"{type(value).__name__} {value!r}.")
    return cls, preset, kwargs


def validate(config):
    """Validates a whole config dict; raises ConfigError with the dotted path."""
    from keras_aigc import data

    if not isinstance(config, dict):
        raise ConfigError(f"config: expected a mapping at the top, got {type(config).__name__}.")
    for key in config:
        if key in UNREAD_SECTIONS:
            raise ConfigError(f"{key}: no command reads this section; {UNREAD_SECTIONS[key]}.")
        if key not in SECTIONS:
            raise ConfigError(f"{key}: unknown section. Allowed sections: {list(SECTIONS)}.")
    cls, _, _ = check_model_section(config.get("model", {}))
    data_section = dict(config.get("data") or {})
    if "source" not in data_section:
        raise ConfigError("data.source: missing. Use digits, npz:PATH, tfds:NAME or dir:PATH.")
    check_kwargs("data", data_section, data.load, skip=("with_info",))
    if "with_info" in data_section:
        raise ConfigError("data.with_info: set by the trainer, not by configs.")
    if data_section.get("repeat") and not (
            str(data_section["source"]).startswith("records:")
            and data_section.get("streaming", True)):
        raise ConfigError(
            f"data.repeat: true streams `records:` shards without end, but data.source is "
            f"{data_section['source']!r} (streaming={data_section.get('streaming', True)!r}). "
            "Prepare the data with `keras-aigc prepare` and use records:DIR, or drop "
            "data.repeat.")
    compile_fn = cls.compile
    check_kwargs("compile", config.get("compile") or {}, compile_fn)
    check_kwargs("training", config.get("training") or {}, TrainingConfig)
    check_training_values(config.get("training") or {})
    from keras_aigc.cli.train_monitoring import check_training_values as check_monitoring

    check_monitoring(config.get("training") or {})
    return config


BATCH_SIZE_MODES = ("global", "per_replica")


def check_training_values(section):
    """Checks the values (not just the types) of the distribution-related training keys."""
    from keras_aigc.distribute.strategy import parse_spec

    if "strategy" in section:
        try:
            parse_spec(section["strategy"])
        except ValueError as e:
            raise ConfigError(f"training.strategy: {e}") from e
    mode = section.get("batch_size_mode", "global")
    if mode not in BATCH_SIZE_MODES:
        raise ConfigError(f"training.batch_size_mode: unknown mode {mode!r}. Choose one of "
                          f"{list(BATCH_SIZE_MODES)}.")
    freq = section.get("backup_freq", "epoch")
    if freq is not None and freq != "epoch" and not (isinstance(freq, int) and freq >= 1):
        raise ConfigError(f"training.backup_freq: expected 'epoch', a positive step count or "
                          f"null, got {freq!r}.")
    policy = section.get("mixed_precision")
    allowed = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
    if policy is not None and policy not in allowed:
        raise ConfigError(f"training.mixed_precision: unknown policy {policy!r}. Choose one "
                          f"of {list(allowed)} or null.")
    jit = section.get("jit_compile", "auto")
    if jit != "auto" and not isinstance(jit, bool):
        raise ConfigError(f"training.jit_compile: expected true, false or 'auto', got "
                          f"{jit!r}.")
    spe = section.get("steps_per_execution", 1)
    if spe < 1:
        raise ConfigError(f"training.steps_per_execution: expected an integer >= 1, got "
                          f"{spe!r}.")
    if section.get("interpolation_rows", 4) < 0:
        raise ConfigError(f"training.interpolation_rows: expected an integer >= 0 (0 turns "
                          f"the strip off), got {section['interpolation_rows']!r}.")
    if section.get("interpolation_steps", 8) < 2:
        raise ConfigError(f"training.interpolation_steps: expected an integer >= 2, got "
                          f"{section['interpolation_steps']!r}.")
    timeout = section.get("cluster_timeout", 120.0)
    if timeout <= 0:
        raise ConfigError(f"training.cluster_timeout: expected a positive number of seconds, "
                          f"got {timeout!r}.")


def parse_override(text):
    """`a.b.c=value` -> (["a", "b", "c"], parsed value); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. "
                          "--set training.epochs=3.")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: the key {key!r} is not a dotted path.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({e}).") from e
    return key.split("."), value


def apply_overrides(config, overrides):
    config = copy.deepcopy(config)
    for text in overrides or ():
        path, value = parse_override(text)
        node = config
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is not a section.")
            node = child
        node[path[-1]] = value
    return config


def read_yaml(path, what="Config"):
    """The YAML document at `path` (`{}` when empty); clear errors for a missing file or bad YAML."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file not found: {os.path.abspath(path)!r}.")
    with open(path) as f:
        try:
            return yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({e}).") from e


def load_config(path, overrides=()):
    """Reads a YAML config, applies `--set` overrides and validates the result."""
    config = read_yaml(path)
    if isinstance(config, dict):
        # Paths written in the file are relative to the file; --set ones to the shell's cwd.
        config = resolve_paths(config, os.path.dirname(os.path.abspath(path)))
    config = apply_overrides(config, overrides)
    if isinstance(config, dict):
        config = resolve_paths(config, os.getcwd())
    return validate(config)


PATH_SCHEMES = ("npz", "dir")


def resolve_paths(config, base_dir):
    """A copy of `config` with relative file paths (`data.source` of `npz:`/`dir:`,
    `data.data_dir`) made absolute against `base_dir`; the run directory stores them so,
    and `keras-aigc evaluate` run from anywhere reads the same data."""
    data = config.get("data")
    if not isinstance(data, dict):
        return config
    data = dict(data)
    source = data.get("source")
    if isinstance(source, str):
        scheme, sep, rest = source.partition(":")
        if sep and scheme in PATH_SCHEMES and rest and not os.path.isabs(
                os.path.expanduser(rest)):
            data["source"] = f"{scheme}:{os.path.normpath(os.path.join(base_dir, rest))}"
    if isinstance(data.get("data_dir"), str) and not os.path.isabs(
            os.path.expanduser(data["data_dir"])):
        data["data_dir"] = os.path.normpath(os.path.join(base_dir, data["data_dir"]))
    return {**config, "data": data}
