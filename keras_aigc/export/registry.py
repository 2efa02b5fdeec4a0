"""Format name -> exporter module, as `keras.src.export` maps `format=` to its exporters.

Every exporter module provides the same small interface, which `bundle.export_bundle`
runs in one loop:

- `REQUIRES`: tuple of other formats whose files it builds on (Triton on ONNX);
- `DEFAULT`: bool, whether `export_bundle(formats=None)` writes it for a model that
  supports it (see `GenerativeModel.export_formats`);
- `write(spec, ctx)`: writes its file(s) under `ctx.root` and returns a list of
  `Artifact`s, each naming the signatures (`Part`s) inside one bundle path;
- `runner(ctx, artifact, part)`: `run(inputs: list of arrays) -> {output: array}`
  calling that signature of the written file, for the parity check against Keras;
- `describe(ctx, artifact, part)`: the manifest `files[].signatures[]` entry, read back
  from the written file.

- `LABEL`: how error messages name the format.

Adding a format is one module with these names and one line in `EXPORTERS`.
"""

import dataclasses
import importlib
import os

EXPORTERS = {
    "saved_model": "keras_aigc.export.saved_model",
    "tflite": "keras_aigc.export.tflite",
    "onnx": "keras_aigc.export.onnx",
    "triton": "keras_aigc.export.triton",
}


def get_exporter(name):
    """The exporter module of format `name`."""
    if name not in EXPORTERS:
        raise ValueError(f"Unrecognized format {name!r}. Supported formats are: "
                         f"{list(EXPORTERS)}.")
    return importlib.import_module(EXPORTERS[name])


@dataclasses.dataclass
class Part:
    """One signature inside a bundle file: `key` names it in the file (None: the file has
    only this one), `batch_size` is `None` for a dynamic batch."""

    signature: object
    key: object = None
    batch_size: object = None


@dataclasses.dataclass
class Artifact:
    """One bundle path (a file or a directory) written by an exporter."""

    path: str
    format: str
    parts: list
    quantization: str = "none"
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class ExportContext:
    """What the exporters share while one bundle is built.

    Attributes:
        root: str. The bundle directory being written (a temporary one).
        formats: tuple of str. Formats requested.
        quantize: tuple of str. Extra TFLite quantizations.
        onnx_quantize: tuple of str. Extra ONNX quantizations (`onnx.QUANTIZATIONS`).
        batch_sizes: tuple of int or `None` (dynamic batch).
        name: str. Bundle name.
        max_batch_size: int. Triton's `max_batch_size`.
        serving_batch_sizes: tuple of int. With a dynamic batch, the extra fixed-batch
            TFLite files to write (XNNPACK runs those several times faster).
        rng: `np.random.Generator` of the verification and representative inputs.
        artifacts: dict. Artifacts written so far, by format.
        cache: dict. Loaded files the exporters reuse between `runner` and `describe`.
    """

    root: str
    formats: tuple
    quantize: tuple
    batch_sizes: object
    name: str
    max_batch_size: int
    rng: object
    serving_batch_sizes: tuple = ()
    onnx_quantize: tuple = ()
    artifacts: dict = dataclasses.field(default_factory=dict)
    cache: dict = dataclasses.field(default_factory=dict)
    _saved_models: dict = dataclasses.field(default_factory=dict)

    @property
    def work(self):
        """Scratch directory inside the bundle, removed before the manifest is written."""
        path = os.path.join(self.root, "_work")
        os.makedirs(path, exist_ok=True)
        return path

    def full(self, path):
        return os.path.join(self.root, *path.split("/"))

    def saved_model(self, spec, batch_sizes=None):
        """A SavedModel of `spec` (dynamic batch, or fixed-batch endpoints), written once:
        the bundle's own when `"saved_model"` is requested, else a scratch one."""
        key = None if batch_sizes is None else tuple(batch_sizes)
        if key not in self._saved_models:
            from keras_aigc.export import saved_model

            if key is None and "saved_model" in self.formats:
                path = self.full("saved_model")
            else:
                path = os.path.join(self.work, "saved_model" if key is None
                                    else "saved_model_fixed")
            self._saved_models[key] = saved_model.export_saved_model(spec, path, batch_sizes)
        return self._saved_models[key]
