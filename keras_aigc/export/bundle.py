"""`export_bundle`: SavedModel, TFLite and ONNX files plus a validated `manifest.json`."""

import datetime
import importlib.metadata
import json
import os
import platform
import re
import shutil
import tempfile

import numpy as np

from keras_aigc.export import onnx as onnx_lib
from keras_aigc.export import tflite as tflite_lib
from keras_aigc.export import triton as triton_lib
from keras_aigc.export import verify as verify_lib
from keras_aigc.export.export_utils import NOISE, check_model, export_spec
from keras_aigc.export.registry import EXPORTERS, ExportContext, get_exporter
from keras_aigc_runtime.manifest import (
    MANIFEST,
    SCHEMA_PATH,
    SCHEMA_VERSION,
    load_manifest,
    load_schema,
    sha256_path,
    size_bytes,
    validate_manifest,
)
from keras_aigc_runtime.postprocess import to_uint8_spec

FORMATS = tuple(EXPORTERS)
QUANTIZATIONS = tflite_lib.QUANTIZATIONS
ONNX_QUANTIZATIONS = onnx_lib.QUANTIZATIONS

__all__ = ["FORMATS", "QUANTIZATIONS", "ONNX_QUANTIZATIONS", "export_bundle", "check_export_args",
           "check_onnx_quantize", "default_formats", "load_manifest",
           "load_schema", "validate_manifest", "MANIFEST", "SCHEMA_PATH", "SCHEMA_VERSION"]


def check_choices(values, allowed, arg):
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    for v in values:
        if v not in allowed:
            raise ValueError(f"Unrecognized {arg} {v!r} in {arg}={values!r}. Supported "
                             f"{arg} are: {list(allowed)}.")
    return tuple(dict.fromkeys(values))


def check_batch_sizes(batch_sizes, arg="batch_sizes"):
    if batch_sizes is None:
        return None
    if isinstance(batch_sizes, (int, np.integer)):
        batch_sizes = (batch_sizes,)
    try:
        sizes = tuple(batch_sizes)
    except TypeError:
        sizes = ()
    if not sizes or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1
                        for b in sizes):
        raise ValueError(f"{arg} must be None (dynamic batch) or positive integers, got "
                         f"{arg}={batch_sizes!r}.")
    return tuple(sorted(set(int(b) for b in sizes)))


def check_out_dir(out_dir, overwrite):
    if os.path.lexists(out_dir):
        if not overwrite:
            raise ValueError(f"out_dir={out_dir!r} already exists; pass overwrite=True "
                             f"(--overwrite) to replace it.")
        if not os.path.isdir(out_dir) or (os.listdir(out_dir) and not os.path.isfile(
                os.path.join(out_dir, MANIFEST))):
            raise ValueError(f"out_dir={out_dir!r} exists and is not an export bundle (no "
                             f"{MANIFEST}); refusing to replace it even with overwrite=True.")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if os.path.exists(parent) and not os.path.isdir(parent):
        raise NotADirectoryError(f"The parent of out_dir={out_dir!r} is not a directory: "
                                 f"{parent}.")


def check_export_args(formats, quantize=(), batch_sizes=None):
    """Checks `export_bundle`'s format arguments; returns them normalised.

    Formats are returned in registry order with the formats they require added (Triton
    writes the ONNX files too).

    Raises:
        ValueError: naming the unknown format or quantization, an empty `formats`,
            `quantize` without `"tflite"`, or bad `batch_sizes`.
    """
    formats = check_choices(formats, FORMATS, "formats")
    if not formats:
        raise ValueError(f"formats is empty. Supported formats are: {list(FORMATS)}.")
    wanted = set(formats)
    for fmt in formats:
        wanted.update(get_exporter(fmt).REQUIRES)
    formats = tuple(f for f in FORMATS if f in wanted)
    quantize = check_choices(quantize, QUANTIZATIONS, "quantize")
    if quantize and "tflite" not in formats:
        raise ValueError(f"quantize={quantize!r} applies to TFLite files, but formats={formats!r} "
                         f"has no 'tflite'.")
    return formats, quantize, check_batch_sizes(batch_sizes)


def default_formats(model, batch_sizes=None):
    """The formats `export_bundle(model, formats=None)` writes: those the model supports
    (`model.export_formats`) that are written by default (SavedModel, TFLite, ONNX; not
    Triton), in registry order, less `model.fixed_batch_formats` for a dynamic batch
    (`batch_sizes=None`).

    Raises:
        ValueError: the model supports none of them, naming the model and why.
    """
    check_model(model)
    formats = tuple(f for f in FORMATS
                    if f in model.export_formats and get_exporter(f).DEFAULT
                    and (batch_sizes is not None or f not in model.fixed_batch_formats))
    if not formats:
        notes = "; ".join(f"{f}: {why}" for f, why in model.export_format_notes.items())
        raise ValueError(f"{type(model).__name__} supports no export format"
                         + (f" ({notes})." if notes else "."))
    return formats


def check_onnx_quantize(onnx_quantize, formats):
    """Checks `export_bundle`'s `onnx_quantize` against the (normalised) `formats`.

    Raises:
        ValueError: naming an unknown ONNX quantization, or `onnx_quantize` without
            `"onnx"` (or `"triton"`, which implies it) in `formats`.
    """
    onnx_quantize = check_choices(onnx_quantize, ONNX_QUANTIZATIONS, "onnx_quantize")
    if onnx_quantize and "onnx" not in formats:
        raise ValueError(f"onnx_quantize={onnx_quantize!r} applies to ONNX files, but "
                         f"formats={formats!r} has no 'onnx'.")
    return onnx_quantize


def _versions(formats):
    def v(dist):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    import keras
    import tensorflow as tf

    from keras_aigc import __version__

    uses_onnx = "onnx" in formats or "triton" in formats
    return {
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "keras_aigc": __version__,
        "tf2onnx": v("tf2onnx") if uses_onnx else None,
        "onnx": v("onnx") if uses_onnx else None,
        "onnx_opset": onnx_lib.DEFAULT_OPSET if uses_onnx else None,
        "onnxruntime": v("onnxruntime") or v("onnxruntime-gpu") if uses_onnx else None,
        "ai_edge_litert": v("ai-edge-litert") if "tflite" in formats else None,
    }


def export_bundle(model, out_dir, formats=None, quantize=(),
                  batch_sizes=None, overwrite=False, name=None, seed=None,
                  max_batch_size=triton_lib.DEFAULT_MAX_BATCH_SIZE, serving_batch_sizes=None,
                  onnx_quantize=()):
    """Exports a keras_aigc model to a verified bundle directory.

    Every file is run after it is written and compared with the Keras model on fresh
    inputs drawn from the model's prior at batch sizes 1 and 7 (and each of
    `batch_sizes`); a file outside its tolerance (`verify.TOLERANCES`) fails the export.
    The bundle is built in a temporary directory next to `out_dir` and renamed at the
    end, so a failed export leaves nothing behind.

    Args:
        model: a `keras_aigc.models.GenerativeModel` (built here if it is not).
        out_dir: str. Bundle directory to create.
        formats: tuple of str from `FORMATS`, each one the model supports
            (`model.export_formats`; any other is refused before anything is written,
            naming the reason). `"triton"` adds a Triton model repository under
            `triton/` (and implies `"onnx"`). Defaults to `default_formats(model)`: the
            model's formats among SavedModel, TFLite and ONNX.
        quantize: tuple of str from `QUANTIZATIONS`: extra TFLite variants next to fp32.
        batch_sizes: `None` for dynamic-batch TFLite files (verified at every tested
            batch size), or ints: one fixed-batch TFLite file per size (faster with
            XNNPACK; see tensorflow#61410 about resizing transposed convolutions).
        overwrite: bool. Replace an existing bundle at `out_dir`.
        name: str. Bundle name (Triton model prefix). Defaults to the model's name.
        seed: int. Seed of the verification inputs; fresh ones when `None`.
        max_batch_size: int. Triton `max_batch_size`, and the server's default largest
            merged batch (`keras-aigc-serve --max-batch`).
        serving_batch_sizes: tuple of int or None. With a dynamic-batch TFLite file
            (`batch_sizes=None`), also write fixed-batch TFLite files of these sizes
            (every quantization), which XNNPACK runs several times faster; the runtime
            uses a fixed file when a call's batch equals its size and the dynamic file
            otherwise. Defaults to `(1, max_batch_size)`: single requests and the
            server's full merged batch. `()` writes the dynamic file only.
        onnx_quantize: tuple of str from `ONNX_QUANTIZATIONS`: extra ONNX variants next to
            fp32 (`model_<quantization>.onnx`), with float32 inputs and outputs:
            `"float16"` (onnxconverter-common, `pip install "keras-aigc[onnx-fp16]"`),
            `"dynamic_int8"` (int8 weights of the dense layers) and `"int8"` (static
            QDQ quantization calibrated on inputs from the model's prior). They get
            the same parity checks as the TFLite variants of the same name; the runtime
            loads them with `load(bundle, backend="onnx", variant=...)`.

    Returns:
        The manifest dict.

    Example:

    ```python
    gan = keras_aigc.models.DCGAN(image_shape=(28, 28, 1), latent_dim=64)
    gan.build()
    keras_aigc.export.export_bundle(gan, "bundle/", quantize=("float16", "int8"))
    ```
    """
    check_model(model)
    if formats is None:
        formats = default_formats(model, check_batch_sizes(batch_sizes))
    formats, quantize, batch_sizes = check_export_args(formats, quantize, batch_sizes)
    model.check_export_formats(formats, batch_sizes)
    onnx_quantize = check_onnx_quantize(onnx_quantize, formats)
    model.check_export_quantization(quantize + onnx_quantize)
    if serving_batch_sizes is None:
        serving_batch_sizes = (1, max_batch_size)
    serving_batch_sizes = (() if batch_sizes is not None or not serving_batch_sizes
                           else check_batch_sizes(serving_batch_sizes, "serving_batch_sizes"))
    out_dir = os.fspath(out_dir)
    if os.path.islink(out_dir):
        # Replace the bundle the link points to and keep the link: renaming the link
        # itself away would leave it behind as a `.old-*` entry (issue 11).
        out_dir = os.path.realpath(out_dir)
    check_out_dir(out_dir, overwrite)
    spec = export_spec(model)
    name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", model.name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name must match [A-Za-z0-9_.-]+, got name={name!r}.")

    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.tmp-",
                           dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a bundle is meant to be shared
    try:
        manifest = _build(spec, tmp, formats, quantize, batch_sizes, name, seed, max_batch_size,
                          serving_batch_sizes, onnx_quantize)
        _finalize(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _finalize(tmp, out_dir, overwrite):
    if os.path.lexists(out_dir):
        check_out_dir(out_dir, overwrite)
        trash = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.old-",
                                 dir=os.path.dirname(os.path.abspath(out_dir)))
        os.rmdir(trash)
        os.rename(out_dir, trash)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            os.rename(trash, out_dir)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(tmp, out_dir)


def _build(spec, root, formats, quantize, batch_sizes, name, seed, max_batch_size,
           serving_batch_sizes=(), onnx_quantize=()):
    """Writes every format's files, verifies each against Keras, writes the manifest."""
    ctx = ExportContext(root=root, formats=formats, quantize=quantize, batch_sizes=batch_sizes,
                        name=name, max_batch_size=max_batch_size,
                        rng=np.random.default_rng(seed),
                        serving_batch_sizes=tuple(serving_batch_sizes),
                        onnx_quantize=tuple(onnx_quantize))
    test_sizes = tuple(sorted(set(verify_lib.VERIFY_BATCH_SIZES) | set(batch_sizes or ())))
    files = []
    for fmt in formats:
        exporter = get_exporter(fmt)
        ctx.artifacts[fmt] = exporter.write(spec, ctx)
        for artifact in ctx.artifacts[fmt]:
            files.append(_verified_entry(spec, ctx, exporter, artifact, test_sizes))
    ctx.cache.clear()
    shutil.rmtree(os.path.join(root, "_work"), ignore_errors=True)
    low, high = spec.value_range
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"family": spec.family, "class_name": spec.class_name, "config": spec.config,
                  "ema_weights": bool(spec.ema_weights)},
        "signatures": {s.name: s.to_json() for s in spec.signatures},
        "latent": (None if spec.latent_dim is None else
                   {"distribution": "normal", "loc": 0.0, "scale": 1.0,
                    "dim": int(spec.latent_dim), "dtype": "float32"}),
        **_noise_entry(spec),
        "num_classes": spec.num_classes,
        "output": {
            "image_shape": [int(d) for d in spec.image_shape],
            "value_range": [low, high],
            "to_uint8": to_uint8_spec(low, high),
        },
        "files": files,
        "tools": _versions(formats),
    }
    validate_manifest(manifest)
    with open(os.path.join(root, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def _noise_entry(spec):
    """`{"noise": {...}}` when a signature takes `noise` (uniform on [0, 1), as
    `ExportSpec.sample_inputs` draws it), else `{}` (the field is optional)."""
    shapes = {tuple(t.shape[1:]) for s in spec.signatures for t in s.inputs if t.role == NOISE}
    if not shapes:
        return {}
    if len(shapes) > 1:
        raise ValueError(f"Signatures take noise of different shapes {sorted(shapes)}; the "
                         "manifest describes one noise shape.")
    return {"noise": {"distribution": "uniform", "low": 0.0, "high": 1.0,
                      "shape": [int(d) for d in shapes.pop()], "dtype": "float32"}}


def _verified_entry(spec, ctx, exporter, artifact, test_sizes):
    """Runs every signature of one written artifact against Keras on fresh inputs and
    returns its manifest `files[]` entry; raises if any output is out of tolerance."""
    what = f"The {exporter.LABEL} file {artifact.path}"
    parity, signatures = [], []
    for part in artifact.parts:
        sizes = test_sizes if part.batch_size is None else (part.batch_size,) * 2
        parity += verify_lib.verify(spec, part.signature, exporter.runner(ctx, artifact, part),
                                    sizes, artifact.quantization, ctx.rng, what)
        signatures.append(exporter.describe(ctx, artifact, part))
    verify_lib.check(parity, what)
    full = ctx.full(artifact.path)
    return {"path": artifact.path, "format": artifact.format,
            "quantization": artifact.quantization, "sha256": sha256_path(full),
            "size_bytes": size_bytes(full), "signatures": signatures, "parity": parity,
            **artifact.extra}
