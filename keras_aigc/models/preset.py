"""Trained presets in the keras-hub directory format: save, load, publish.

A preset is a directory that holds

- `config.json`: the model's Keras serialization (`module`, `class_name`, `config`,
  `registered_name`), so `keras.saving.deserialize_keras_object` rebuilds the architecture;
- `model.weights.h5`: `model.save_weights` of the trained model (no optimizer state);
- `metadata.json`: versions, parameter count, date, the training data with its sha256,
  training steps and wall time, and the measured metrics with the network that measured
  them;
- `README.md`: a model card generated from the metadata.

`Model.from_preset(NAME_OR_URI)` accepts, in this order: an architecture name of the class
(e.g. `DCGAN.from_preset("tf_tutorial")`, random weights), a `hf://user/repo[@revision]`
or `kaggle://owner/model/framework/variation[/version]` URI (through `huggingface_hub` /
`kagglehub`), a local preset directory, or a built-in trained name from `TRAINED_PRESETS`
(e.g. `"dcgan_mnist"`), which resolves to where its weights are published.

`PresetMixin` adds `save_to_preset` and `from_preset` to a model class; it only needs the
model to be a Keras-serializable `keras.Model` with `build()`, `count_params()` and
`generate()`.
"""

import datetime
import hashlib
import json
import os
import shutil
import tempfile

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
README_FILE = "README.md"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, README_FILE)
HUB_INSTALL = 'pip install "keras-aigc[hub]"'
DEFAULT_LICENSE = "Apache-2.0"

# Metric keys that are only meaningful with the network whose features produced them.
FEATURE_METRICS = ("fid", "kid", "kid_std", "precision", "recall", "inception_score")
NETWORK_KEYS = ("features", "network")

# Built-in trained presets. `uri` is where the weights are (to be) published; until
# `published` is True, loading fails with the one command that produces the preset locally.
TRAINED_PRESETS = {
    "dcgan_mnist": {"class_name": "DCGAN", "config": "configs/dcgan_infogan_mnist_quality.yaml",
                    "uri": "hf://keras-aigc/dcgan_mnist", "published": False,
                    "description": "DCGAN (the InfoGAN networks of Lucic et al. 2018) trained "
                                   "on MNIST 28x28 by the quality recipe; its card "
                                   "(docs/presets/dcgan_mnist_card.md) gives its FID"},
    "wgan_gp_mnist": {"class_name": "WGANGP", "config": "configs/wgan_gp_mnist.yaml",
                      "uri": "hf://keras-aigc/wgan_gp_mnist", "published": False,
                      "description": "WGAN-GP trained on MNIST 28x28."},
    "sngan_mnist": {"class_name": "SNGAN",
                    "config": "configs/sngan_dcgan_d_mnist_quality_bf16.yaml",
                    "uri": "hf://keras-aigc/sngan_mnist", "published": False,
                    "description": "SNGAN (InfoGAN networks, spectral norm with the gradient "
                                   "through sigma, hinge loss) trained on MNIST 28x28 by the "
                                   "quality recipe; its card (docs/presets/sngan_mnist_card.md) "
                                   "gives its FID"},
    "cgan_mnist": {"class_name": "ConditionalGAN",
                   "config": "configs/cgan_bn_infogan_mnist_quality.yaml",
                   "uri": "hf://keras-aigc/cgan_mnist", "published": False,
                   "description": "Class-conditional GAN (InfoGAN networks, batch-normalized "
                                  "projection D) trained on MNIST 28x28 by the quality "
                                  "recipe; its card (docs/presets/cgan_mnist_card.md) gives "
                                  "its FID"},
    "vae_mnist": {"class_name": "VAE", "config": "configs/vae_mnist.yaml",
                  "uri": "hf://keras-aigc/vae_mnist", "published": False,
                  "description": "VAE trained on MNIST 28x28."},
    "cvae_mnist": {"class_name": "ConditionalVAE", "config": "configs/cvae_mnist.yaml",
                   "uri": "hf://keras-aigc/cvae_mnist", "published": False,
                   "description": "Class-conditional VAE trained on MNIST 28x28."},
}


class PresetError(ValueError):
    """A preset name, URI, directory or file is wrong; the message names it."""


# ------------------------------------------------------------------ helpers
def sha256_file(path, chunk=1 << 20):
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(source, **split_kwargs):
    """`{"source", "sha256", "sha256_of"}` of a `keras_aigc.data` source.

    A source that names a local file (`npz:PATH`) is hashed as that file; any other source
    as the bytes of its cleaned uint8 train split (`keras_aigc.data.load_arrays`).
    """
    kind, _, rest = str(source).partition(":")
    if kind == "npz" and os.path.isfile(rest):
        return {"source": source, "sha256": sha256_file(rest), "sha256_of": "file"}
    from keras_aigc import data

    images, labels, _ = data.load_arrays(source, "train", **split_kwargs)
    h = hashlib.sha256(images.tobytes())
    h.update(labels.tobytes())
    return {"source": source, "sha256": h.hexdigest(),
            "sha256_of": "train split arrays (uint8 images then int64 labels)"}


def _versions():
    import keras

    from keras_aigc import __version__
    out = {"keras_aigc_version": __version__, "keras_version": keras.__version__}
    try:
        import tensorflow as tf

        out["tensorflow_version"] = tf.__version__
    except ImportError:  # pragma: no cover - TensorFlow is a core dependency
        pass
    return out


def _check_metrics(metrics):
    if metrics is None:
        return {}
    if not isinstance(metrics, dict):
        raise PresetError(f"metrics must be a dict (e.g. the metrics.json of `keras-aigc "
                          f"evaluate`), got {type(metrics).__name__}.")
    metrics = dict(metrics)
    measured = [k for k in FEATURE_METRICS if metrics.get(k) is not None]
    if measured and not any(metrics.get(k) for k in NETWORK_KEYS):
        raise PresetError(
            f"metrics has {measured} but does not name the network that measured them: add "
            "metrics['features'] (e.g. 'fid_inception' or the domain classifier's name), as "
            "`keras-aigc evaluate` writes it.")
    try:
        json.dumps(metrics)
    except TypeError as e:
        raise PresetError(f"metrics must be JSON-serializable: {e}.") from None
    return metrics


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _duration(seconds):
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


METRIC_LABELS = {
    "fid": "FID", "kid": "KID", "kid_std": "KID std", "precision": "Precision",
    "recall": "Recall", "inception_score": "Inception Score",
    "test_nll": "Test NLL (nats)", "test_elbo": "Test ELBO (nats)",
    "test_nll_bits_per_dim": "Test NLL (bits/dim)",
}


def model_card(metadata, config):
    """The README.md of a preset, as a string, from its metadata and Keras config."""
    name = metadata.get("name") or metadata["class_name"]
    lines = [f"# {name}", ""]
    if metadata.get("description"):
        lines += [metadata["description"], ""]
    lines += ["A keras-aigc preset (keras-hub directory format: `config.json`, "
              "`model.weights.h5`, `metadata.json`).", ""]
    lines += ["## Architecture", "",
              f"- Class: `keras_aigc.models.{metadata['class_name']}`",
              f"- Parameters: {metadata['parameter_count']:,}"]
    for key in ("image_shape", "latent_dim", "num_classes", "value_range"):
        if metadata.get(key) is not None:
            lines.append(f"- {key}: `{metadata[key]}`")
    lines += ["", "<details><summary>Full config</summary>", "", "```json",
              json.dumps(config.get("config", config), indent=2, sort_keys=True), "```", "",
              "</details>", ""]
    data = metadata.get("data") or {}
    lines += ["## Data", ""]
    if data:
        for key, value in data.items():
            lines.append(f"- {key}: `{value}`")
    else:
        lines.append("- not recorded")
    lines += ["", "## Training", ""]
    training = metadata.get("training") or {}
    if training:
        for key, value in training.items():
            if key.startswith("wall_time") and isinstance(value, (int, float)):
                lines.append(f"- wall time: {_duration(value)} ({value:.1f} s)")
            else:
                lines.append(f"- {key}: `{value}`")
    else:
        lines.append("- not recorded")
    lines += ["", "## Metrics", ""]
    metrics = metadata.get("metrics") or {}
    shown = [k for k in METRIC_LABELS if metrics.get(k) is not None]
    if shown:
        network = next((metrics[k] for k in NETWORK_KEYS if metrics.get(k)), None)
        if network:
            lines += [f"Measured with the features of **{network}**"
                      + (f" on {metrics['num_generated']} generated against "
                         f"{metrics.get('num_real')} real images"
                         if metrics.get("num_generated") else "") + ".", ""]
        if metrics.get("nll_importance_samples"):
            lines += [f"NLL: importance-sampled with k = {metrics['nll_importance_samples']} "
                      f"on {metrics.get('num_test_examples')} test examples.", ""]
        lines += ["| Metric | Value |", "|---|---|"]
        lines += [f"| {METRIC_LABELS[k]} | {_fmt(metrics[k])} |" for k in shown]
        others = {k: v for k, v in metrics.items() if k not in shown and k not in NETWORK_KEYS}
        if others:
            lines += ["", "Other recorded values: "
                      + ", ".join(f"{k}={_fmt(v)}" for k, v in others.items())]
    else:
        lines.append("- not measured")
    name = metadata.get("name") or "PRESET"
    if name in TRAINED_PRESETS:
        load = f"model = keras_aigc.models.{metadata['class_name']}.from_preset({name!r})"
    else:
        load = (f"model = keras_aigc.models.{metadata['class_name']}.from_preset("
                f"\"hf://USER/{name}\")  # or its local directory")
    lines += ["", "## Usage", "", "```python", "import keras_aigc", load,
              "images = model.generate(16, seed=0)"
              + ("  # labels=... for the class-conditional model"
                 if metadata.get("num_classes") else ""),
              "```", "", "## Software", ""]
    for key in ("keras_aigc_version", "keras_version", "tensorflow_version"):
        if metadata.get(key):
            lines.append(f"- {key.replace('_version', '').replace('_', '-')}: "
                         f"{metadata[key]}")
    lines += [f"- saved: {metadata.get('date')}", "", "## License", "",
              metadata.get("license") or DEFAULT_LICENSE, ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ saving
def save_to_preset(model, preset_dir, metrics=None, data=None, training=None,
                   license=DEFAULT_LICENSE, name=None, description=None, overwrite=False):
    """Writes `model` as a preset directory; see `PresetMixin.save_to_preset`."""
    import keras

    preset_dir = os.path.abspath(os.fspath(preset_dir))
    if os.path.exists(preset_dir) and not overwrite:
        raise PresetError(f"preset_dir={preset_dir!r} already exists; pass overwrite=True "
                          "(--overwrite) to replace it.")
    metrics = _check_metrics(metrics)
    for arg, value in (("data", data), ("training", training)):
        if value is not None and not isinstance(value, dict):
            raise PresetError(f"{arg} must be a dict or None, got {type(value).__name__}.")
    if not model.built:
        model.build()
    config = keras.saving.serialize_keras_object(model)
    metadata = {
        "name": name or os.path.basename(preset_dir),
        "class_name": type(model).__name__,
        "description": description,
        **_versions(),
        "parameter_count": int(model.count_params()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        # The model contract (keras_aigc.models.base.GenerativeModel) defines all four.
        "image_shape": list(model.image_shape) if model.image_shape else None,
        "latent_dim": model.latent_dim,
        "num_classes": model.num_classes,
        "value_range": list(model.value_range),
        "data": dict(data or {}),
        "training": dict(training or {}),
        "metrics": metrics,
        "license": license,
    }
    try:
        json.dumps(metadata)
    except TypeError as e:
        raise PresetError(f"data/training must be JSON-serializable: {e}.") from None
    parent = os.path.dirname(preset_dir)
    os.makedirs(parent, exist_ok=True)
    # Everything goes to a temporary sibling first, then one rename: a failure leaves the
    # destination as it was (absent or the old preset) and no partial directory.
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(preset_dir)}.tmp-", dir=parent)
    try:
        with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
            json.dump(config, f, indent=2)
        model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        metadata["weights_sha256"] = sha256_file(os.path.join(tmp, WEIGHTS_FILE))
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2)
        with open(os.path.join(tmp, README_FILE), "w") as f:
            f.write(model_card(metadata, config))
        if os.path.exists(preset_dir):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(preset_dir)}.old-", dir=parent)
            os.rmdir(old)
            os.replace(preset_dir, old)
            os.replace(tmp, preset_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, preset_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return preset_dir


# ------------------------------------------------------------------ resolving
def _hf_download(spec):
    repo, _, revision = spec.partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise PresetError(f"preset='hf://{spec}': expected hf://USER/REPO or "
                          "hf://USER/REPO@REVISION.")
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError(f"Loading preset 'hf://{spec}' needs huggingface_hub. Install it "
                          f"with: {HUB_INSTALL}") from None
    try:
        return huggingface_hub.snapshot_download(repo, revision=revision or None)
    except Exception as e:
        raise PresetError(f"preset='hf://{spec}': could not download it from the Hugging Face "
                          f"Hub nor find it in the local cache "
                          f"({type(e).__name__}: {e}).") from e


def _kaggle_download(spec):
    parts = spec.split("/")
    if len(parts) not in (4, 5) or not all(parts):
        raise PresetError(f"preset='kaggle://{spec}': expected "
                          "kaggle://OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION].")
    try:
        import kagglehub
    except ImportError:
        raise ImportError(f"Loading preset 'kaggle://{spec}' needs kagglehub. Install it "
                          f"with: {HUB_INSTALL}") from None
    try:
        return kagglehub.model_download(spec)
    except Exception as e:
        raise PresetError(f"preset='kaggle://{spec}': could not download it from Kaggle nor "
                          f"find it in the kagglehub cache ({type(e).__name__}: {e}).") from e


def unpublished_message(name):
    entry = TRAINED_PRESETS[name]
    dest = f"presets/{name}"
    return (f"Preset {name!r} ({entry['description']}) is not published yet; it will be at "
            f"{entry['uri']}. Produce it locally with one command:\n"
            f"    keras-aigc publish --train {entry['config']} {dest}\n"
            f"then load it with keras_aigc.models.{entry['class_name']}.from_preset({dest!r}).")


def resolve(preset):
    """Returns the local directory of a preset directory, URI or built-in trained name."""
    if not isinstance(preset, (str, os.PathLike)) or not os.fspath(preset):
        raise PresetError(f"preset must be a non-empty string, got {preset!r}.")
    preset = os.fspath(preset)
    scheme, sep, rest = preset.partition("://")
    if sep:
        if scheme == "hf":
            return _hf_download(rest)
        if scheme == "kaggle":
            return _kaggle_download(rest)
        if scheme == "file":
            return resolve(rest)
        raise PresetError(f"preset={preset!r}: unknown scheme {scheme + '://'!r}. Use a local "
                          "directory, hf://USER/REPO or kaggle://OWNER/MODEL/FRAMEWORK/"
                          "VARIATION[/VERSION].")
    if os.path.isdir(preset):
        return preset
    if preset in TRAINED_PRESETS:
        entry = TRAINED_PRESETS[preset]
        if not entry["published"]:
            raise PresetError(unpublished_message(preset))
        return resolve(entry["uri"])
    if os.sep in preset or preset.startswith(".") or os.path.exists(preset):
        raise FileNotFoundError(f"preset={preset!r}: no such preset directory. Write one with "
                                "model.save_to_preset(DIR) or `keras-aigc publish RUN_DIR DIR`.")
    return None


def load_preset(preset, cls=None, **kwargs):
    """Loads a trained preset (directory, URI or built-in trained name) into a model.

    Args:
        preset: str. See the module docstring.
        cls: class or None. When given, the preset must hold an instance of it.
        **kwargs: config values that override the saved ones (e.g. `seed`).
    """
    import keras

    import keras_aigc.models  # noqa: F401 - registers the classes for deserialization

    directory = resolve(preset)
    if directory is None:
        known = sorted(getattr(cls, "presets", None) or {}) if cls else []
        raise PresetError(
            f"Unrecognized preset={preset!r}. Use a preset directory, hf://USER/REPO, "
            f"kaggle://OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION], a trained preset "
            f"{sorted(TRAINED_PRESETS)}"
            + (f" or an architecture preset of {cls.__name__} {known}" if known else "") + ".")
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if not os.path.isfile(
        os.path.join(directory, f))]
    if missing:
        raise FileNotFoundError(
            f"preset={preset!r}: {directory!r} is not a keras-aigc preset; it lacks "
            f"{missing} (found: {sorted(os.listdir(directory))}).")
    try:
        with open(os.path.join(directory, CONFIG_FILE)) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise PresetError(f"preset={preset!r}: {CONFIG_FILE} is not valid JSON ({e}).") from e
    if not isinstance(config, dict) or "class_name" not in config:
        raise PresetError(f"preset={preset!r}: {CONFIG_FILE} is not a Keras serialization "
                          "(no class_name).")
    if cls is not None:
        registered = config.get("registered_name") or config["class_name"]
        target = keras.saving.get_registered_object(registered)
        if target is None or not issubclass(target, cls):
            raise PresetError(
                f"preset={preset!r} holds a {config['class_name']}, not a {cls.__name__}; "
                f"load it with keras_aigc.models.{config['class_name']}.from_preset or "
                "keras_aigc.models.from_preset.")
    if kwargs:
        config = {**config, "config": {**config["config"], **kwargs}}
    model = keras.saving.deserialize_keras_object(config)
    if not model.built:
        model.build()
    weights = os.path.join(directory, WEIGHTS_FILE)
    try:
        model.load_weights(weights)
    except Exception as e:
        raise PresetError(f"preset={preset!r}: could not load {weights!r} "
                          f"({type(e).__name__}: {e}). The file is corrupt or belongs to a "
                          "different architecture; re-download or re-save the preset.") from e
    return model


def read_metadata(preset):
    """The `metadata.json` of a preset (directory, URI or trained name) as a dict."""
    directory = resolve(preset)
    if directory is None:
        raise PresetError(f"Unknown preset={preset!r}.")
    with open(os.path.join(directory, METADATA_FILE)) as f:
        return json.load(f)


class PresetMixin:
    """Adds keras-hub style `save_to_preset` / `from_preset` to a keras_aigc model.

    Subclasses may set `presets = {name: constructor kwargs}`: those names build the
    architecture with fresh weights (e.g. `DCGAN.from_preset("tf_tutorial")`). Every other
    name is a trained preset: a directory, `hf://`, `kaggle://` or a built-in trained name.

    Example:

    ```python
    gan.save_to_preset("presets/my_dcgan", metrics={"fid": 7.9, "features": "fid_inception"})
    same = keras_aigc.models.DCGAN.from_preset("presets/my_dcgan")
    hub = keras_aigc.models.DCGAN.from_preset("hf://keras-aigc/dcgan_mnist")
    ```
    """

    presets = {}

    def save_to_preset(self, preset_dir, metrics=None, data=None, training=None,
                       license=DEFAULT_LICENSE, name=None, description=None, overwrite=False):
        """Writes this model as a keras-hub style preset directory, atomically.

        Args:
            preset_dir: str. Destination directory (created; must not exist unless
                `overwrite`).
            metrics: dict or None. Measured numbers for the card, e.g. the metrics.json of
                `keras-aigc evaluate`. FID/KID/precision/recall need `"features"`, the
                network that produced them.
            data: dict or None. The training data, e.g. `data_fingerprint(source)`.
            training: dict or None. E.g. `{"steps": ..., "epochs": ..., "wall_time_s": ...}`.
            license: str. License of the weights. Defaults to `"Apache-2.0"`.
            name: str or None. Card title; defaults to the directory name.
            description: str or None. A sentence for the card.
            overwrite: bool. Replace an existing directory. Defaults to `False`.

        Returns:
            The absolute path of the preset directory.
        """
        return save_to_preset(self, preset_dir, metrics=metrics, data=data, training=training,
                              license=license, name=name, description=description,
                              overwrite=overwrite)

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Builds an architecture preset or loads a trained preset.

        Args:
            preset: str. A name in `cls.presets` (architecture, fresh weights), a preset
                directory, `hf://USER/REPO[@REV]`,
                `kaggle://OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]`, or a built-in trained
                name (`keras_aigc.models.preset.TRAINED_PRESETS`).
            **kwargs: constructor arguments that override the preset's.
        """
        if isinstance(preset, str) and preset in (cls.presets or {}):
            return cls.from_architecture_preset(preset, **kwargs)
        return load_preset(preset, cls=cls, **kwargs)

    @classmethod
    def from_architecture_preset(cls, preset, **kwargs):
        """Builds architecture preset `preset` (a key of `cls.presets`) with fresh weights.

        The default passes the preset's constructor arguments to `cls`; a family whose
        presets name networks rather than arguments overrides this.
        """
        return cls(**{**cls.presets[preset], **kwargs})
