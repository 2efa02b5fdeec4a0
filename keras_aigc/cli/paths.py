"""The one place the CLI turns a user's run directory or model path into files."""

import os

MODEL_FILE = "model.keras"


def resolve_model_path(source):
    """`source` as a `.keras` file: itself, or `model.keras` inside a run directory.

    Raises:
        FileNotFoundError: no such file or directory, or a run directory without a
            finished model (naming what it holds).
        ValueError: a file that is not a `.keras` file.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        path = os.path.join(source, MODEL_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Run directory {source!r} has no {MODEL_FILE} (found: "
                f"{sorted(os.listdir(source))}). `keras-aigc train` writes it when training "
                "finishes; train to completion first.")
        return path
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source!r} is neither a run directory nor a .keras file.")
    if not source.endswith(".keras"):
        raise ValueError(f"{source!r} must be a run directory or a .keras file.")
    return source


def run_dir_of(source):
    """The run directory of a run directory or of a `.keras` file inside one."""
    return os.path.dirname(os.path.abspath(resolve_model_path(source)))


def load_model(source):
    """The Keras model of a run directory or `.keras` file (safe mode, no lambdas)."""
    import keras

    import keras_aigc.models  # noqa: F401  (registers the model classes for loading)

    return keras.saving.load_model(resolve_model_path(source), compile=False, safe_mode=True)
