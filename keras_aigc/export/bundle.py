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
from keras_aigc.export import saved_model as saved_model_lib
from keras_aigc.export import tflite as tflite_lib
from keras_aigc.export import triton as triton_lib
from keras_aigc.export import verify as verify_lib
from keras_aigc.export.export_utils import export_spec, sha256_path

FORMATS = ("saved_model", "tflite", "onnx", "triton")
QUANTIZATIONS = tflite_lib.QUANTIZATIONS
SCHEMA_VERSION = 1
SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "manifest.schema.json")
MANIFEST = "manifest.json"
_SUFFIX = {"none": "", "float16": "_fp16", "dynamic_int8": "_dynamic_int8", "int8": "_int8"}


def _check_choices(values, allowed, arg):
    if isinstance(values, str):
        values = (values,)
    values = tuple(values)
    for v in values:
        if v not in allowed:
            raise ValueError(f"Unrecognized {arg} {v!r} in {arg}={values!r}. Supported "
                             f"{arg} are: {list(allowed)}.")
    return tuple(dict.fromkeys(values))


def _check_batch_sizes(batch_sizes):
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
        raise ValueError(f"batch_sizes must be None (dynamic batch) or positive integers, got "
                         f"batch_sizes={batch_sizes!r}.")
    return tuple(sorted(set(int(b) for b in sizes)))


def _check_out_dir(out_dir, overwrite):
    if os.path.lexists(out_dir):
        if not overwrite:
            raise ValueError(f"out_dir={out_dir!r} already exists; pass overwrite=True "
                             f"(--overwrite) to replace it.")
        if not os.path.isdir(out_dir) or (os.listdir(out_dir) and not os.path.isfile(
                os.path.join(out_dir, MANIFEST))):
            raise ValueError(f"out_dir={out_dir!r} exists and is not an export bundle (no "
                             f"{MANIFEST}); refusing to replace it even with overwrite=True.")
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"The parent directory of out_dir={out_dir!r} does not exist: "
                                f"{parent}.")


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


def export_bundle(model, out_dir, formats=("saved_model", "tflite", "onnx"), quantize=(),
                  batch_sizes=None, overwrite=False, name=None, seed=None,
                  max_batch_size=triton_lib.DEFAULT_MAX_BATCH_SIZE):
    """Exports a keras_aigc model to a verified bundle directory.

    Every file is run after it is written and compared with the Keras model on fresh
    inputs drawn from the model's prior at batch sizes 1 and 7 (and each of
    `batch_sizes`); a file outside its tolerance (`verify.TOLERANCES`) fails the export.
    The bundle is built in a temporary directory next to `out_dir` and renamed at the
    end, so a failed export leaves nothing behind.

    Args:
        model: built keras_aigc model (GAN, conditional GAN, VAE).
        out_dir: str. Bundle directory to create.
        formats: tuple of str from `FORMATS`. `"triton"` adds a Triton model repository
            under `triton/` (and implies `"onnx"`). Defaults to SavedModel, TFLite, ONNX.
        quantize: tuple of str from `QUANTIZATIONS`: extra TFLite variants next to fp32.
        batch_sizes: `None` for dynamic-batch TFLite files (verified at every tested
            batch size), or ints: one fixed-batch TFLite file per size (faster with
            XNNPACK; see tensorflow#61410 about resizing transposed convolutions).
        overwrite: bool. Replace an existing bundle at `out_dir`.
        name: str. Bundle name (Triton model prefix). Defaults to the model's name.
        seed: int. Seed of the verification inputs; fresh ones when `None`.
        max_batch_size: int. Triton `max_batch_size`.

    Returns:
        The manifest dict.

    Example:

    ```python
    gan = keras_aigc.models.DCGAN(image_shape=(28, 28, 1), latent_dim=64)
    gan.build()
    keras_aigc.export.export_bundle(gan, "bundle/", quantize=("float16", "int8"))
    ```
    """
    formats = _check_choices(formats, FORMATS, "formats")
    if not formats:
        raise ValueError(f"formats is empty. Supported formats are: {list(FORMATS)}.")
    quantize = _check_choices(quantize, QUANTIZATIONS, "quantize")
    if quantize and "tflite" not in formats:
        raise ValueError(f"quantize={quantize!r} applies to TFLite files, but formats={formats!r} "
                         f"has no 'tflite'.")
    batch_sizes = _check_batch_sizes(batch_sizes)
    out_dir = os.fspath(out_dir)
    if os.path.islink(out_dir):
        # Replace the bundle the link points to and keep the link: renaming the link
        # itself away would leave it behind as a `.old-*` entry (issue 11).
        out_dir = os.path.realpath(out_dir)
    _check_out_dir(out_dir, overwrite)
    spec = export_spec(model)
    name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", model.name)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"name must match [A-Za-z0-9_.-]+, got name={name!r}.")

    parent = os.path.dirname(os.path.abspath(out_dir))
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.tmp-",
                           dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a bundle is meant to be shared
    try:
        manifest = _build(spec, tmp, formats, quantize, batch_sizes, name, seed, max_batch_size)
        _finalize(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _finalize(tmp, out_dir, overwrite):
    if os.path.lexists(out_dir):
        _check_out_dir(out_dir, overwrite)
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


def _build(spec, root, formats, quantize, batch_sizes, name, seed, max_batch_size):
    rng = np.random.default_rng(seed)
    test_sizes = tuple(sorted(set(verify_lib.VERIFY_BATCH_SIZES) | set(batch_sizes or ())))
    work = os.path.join(root, "_work")
    os.makedirs(work)
    files = []

    def add(path, fmt, quant, signatures, parity, **extra):
        digest, size = sha256_path(os.path.join(root, path))
        files.append({"path": path, "format": fmt, "quantization": quant, "sha256": digest,
                      "size_bytes": size, "signatures": signatures, "parity": parity, **extra})

    # The dynamic-batch SavedModel is a product and the source of the other conversions.
    sm_dir = os.path.join(root if "saved_model" in formats else work, "saved_model")
    saved_model_lib.export_saved_model(spec, sm_dir)
    if "saved_model" in formats:
        parity = []
        for sig in spec.signatures:
            run = saved_model_lib.runner(sm_dir, sig.name, [i.name for i in sig.inputs])
            parity += verify_lib.verify(spec, sig, run, test_sizes, "none", rng,
                                          "The SavedModel")
        verify_lib.check(parity, "The SavedModel")
        add("saved_model", "saved_model", "none", saved_model_lib.file_signatures(spec, sm_dir),
            parity)

    if "tflite" in formats:
        fixed_dir = None
        if batch_sizes is not None:
            fixed_dir = saved_model_lib.export_saved_model(
                spec, os.path.join(work, "saved_model_fixed"), batch_sizes=batch_sizes)
        for i, sig in enumerate(spec.signatures):
            stem = "model" if i == 0 else sig.name
            for quant in ("none",) + quantize:
                for n in ([None] if batch_sizes is None else batch_sizes):
                    key = sig.name if n is None else f"{sig.name}_b{n}"
                    path = f"{stem}{_SUFFIX[quant]}{'' if n is None else f'_b{n}'}.tflite"
                    rep = _representative(spec, sig, n or 1, rng) if quant == "int8" else None
                    content = tflite_lib.convert(sm_dir if n is None else fixed_dir, key, quant,
                                                 rep)
                    with open(os.path.join(root, path), "wb") as f:
                        f.write(content)
                    run = tflite_lib.runner(os.path.join(root, path), key,
                                            [t.name for t in sig.inputs])
                    sizes = test_sizes if n is None else (n, n)
                    parity = verify_lib.verify(spec, sig, run, sizes, quant, rng,
                                                f"The TFLite file {path}")
                    verify_lib.check(parity, f"The TFLite file {path}")
                    add(path, "tflite", quant,
                        [tflite_lib.file_signature(os.path.join(root, path), key, sig,
                                                   -1 if n is None else n)], parity)

    onnx_entries = {}
    if "onnx" in formats or "triton" in formats:
        for i, sig in enumerate(spec.signatures):
            path = "model.onnx" if i == 0 else f"{sig.name}.onnx"
            full = os.path.join(root, path)
            onnx_lib.export_onnx(sig, full)
            if not onnx_lib.batch_is_dynamic(full):
                raise ValueError(f"The ONNX file {path} has no dynamic batch axis.")
            run = onnx_lib.runner(full, [t.name for t in sig.inputs])
            parity = verify_lib.verify(spec, sig, run, test_sizes, "none", rng,
                                        f"The ONNX file {path}")
            verify_lib.check(parity, f"The ONNX file {path}")
            entry = onnx_lib.file_signature(full, sig)
            onnx_entries[sig.name] = (full, entry, parity)
            add(path, "onnx", "none", [entry], parity, opset=onnx_lib.opset_of(full))

    if "triton" in formats:
        repo = os.path.join(root, "triton")
        entries, parity = [], []
        for sig in spec.signatures:
            full, entry, sig_parity = onnx_entries[sig.name]
            model_name = f"{name}_{sig.name}"
            triton_lib.write_model(repo, model_name, full, entry, max_batch_size)
            # The repository holds byte-identical copies of the verified ONNX files.
            copy = os.path.join(repo, model_name, "1", "model.onnx")
            if sha256_path(copy)[0] != sha256_path(full)[0]:
                raise ValueError(f"Copying {full} into the Triton repository failed.")
            entries.append({**entry, "key": model_name})
            parity += sig_parity
        add("triton", "triton", "none", entries, parity, opset=onnx_lib.opset_of(full),
            max_batch_size=int(max_batch_size))

    shutil.rmtree(work)
    low, high = spec.value_range
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": {"family": spec.family, "class_name": spec.class_name, "config": spec.config,
                  "ema_weights": bool(spec.ema_weights)},
        "signatures": {s.name: s.to_json() for s in spec.signatures},
        "latent": {"distribution": "normal", "loc": 0.0, "scale": 1.0,
                   "dim": int(spec.latent_dim), "dtype": "float32"},
        "num_classes": spec.num_classes,
        "output": {
            "image_shape": [int(d) for d in spec.image_shape],
            "value_range": [low, high],
            "to_uint8": {"formula": "clip(round((x - low) * (255 / (high - low))), 0, 255)",
                         "low": low, "high": high, "rounding": "half_to_even"},
        },
        "files": files,
        "tools": _versions(formats),
    }
    validate_manifest(manifest)
    with open(os.path.join(root, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return manifest


def _representative(spec, sig, batch, rng):
    """At least `REPRESENTATIVE_EXAMPLES` inputs drawn from the model's prior."""
    count = -(-tflite_lib.REPRESENTATIVE_EXAMPLES // batch)
    data = [spec.sample_inputs(sig, batch, rng) for _ in range(count)]

    def gen():
        for inputs in data:
            yield {t.name: x for t, x in zip(sig.inputs, inputs, strict=True)}

    return gen


def load_schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


def validate_manifest(manifest):
    """Raises ValueError if `manifest` does not follow manifest.schema.json."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        msgs = "; ".join(f"{'/'.join(str(p) for p in e.path) or '<root>'}: {e.message}"
                         for e in errors[:12])
        raise ValueError(f"manifest does not match {os.path.basename(SCHEMA_PATH)}: {msgs}")


def load_manifest(bundle_dir, check_files=True):
    """Reads, validates and (by default) checks every file's sha256 in a bundle."""
    path = os.path.join(os.fspath(bundle_dir), MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {MANIFEST} in bundle_dir={os.fspath(bundle_dir)!r}.")
    with open(path) as f:
        manifest = json.load(f)
    validate_manifest(manifest)
    if check_files:
        for entry in manifest["files"]:
            full = os.path.join(bundle_dir, *entry["path"].split("/"))
            if not os.path.exists(full):
                raise FileNotFoundError(f"Bundle file {entry['path']!r} listed in {MANIFEST} is "
                                        f"missing from {os.fspath(bundle_dir)!r}.")
            digest, _ = sha256_path(full)
            if digest != entry["sha256"]:
                raise ValueError(f"sha256 of {entry['path']!r} is {digest}, the manifest says "
                                 f"{entry['sha256']}: the bundle was modified.")
    return manifest
