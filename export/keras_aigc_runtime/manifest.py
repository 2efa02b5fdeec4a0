"""The bundle format: `manifest.json`'s JSON Schema (schema_version 1), its validation
and the sha256 of bundle files.

The runtime owns the format: `keras_aigc.export` (the writer) imports this module, and
`manifest.schema.json` next to it is the only copy of the schema.
"""

import hashlib
import json
import math
import os
import posixpath

SCHEMA_VERSION = 1
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest.schema.json")
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20  # a real manifest is a few KiB


def load_schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


def validate_manifest(manifest):
    """Raises ValueError if `manifest` is not a schema_version 1 keras-aigc manifest."""
    import jsonschema

    if not isinstance(manifest, dict):
        raise ValueError(f"manifest must be a JSON object, got {type(manifest).__name__}.")
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"manifest schema_version={version!r} is not supported: this "
                         f"keras-aigc-runtime reads schema_version {SCHEMA_VERSION}.")
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        msgs = "; ".join(f"{'/'.join(str(p) for p in e.path) or '<root>'}: {e.message}"
                         for e in errors[:5])
        raise ValueError(f"manifest does not match manifest.schema.json: {msgs}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def size_bytes(path):
    """Bytes of a file, or of every file under a directory."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def sha256_path(path):
    """sha256 of a file, or of a directory as sorted `"<sha256> <relpath>\\n"` lines
    (the manifest's tree hash, MANIFEST.md)."""
    if os.path.isfile(path):
        return sha256_file(path)
    lines = []
    top = os.path.realpath(path)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            _check_inside(top, os.path.join(root, name), path)
        for fname in files:
            full = os.path.join(root, fname)
            _check_inside(top, full, path)
            lines.append((os.path.relpath(full, path).replace(os.sep, "/"), sha256_file(full)))
    text = "".join(f"{digest} {rel}\n" for rel, digest in sorted(lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_inside(top, full, shown):
    real = os.path.realpath(full)
    if real != top and not real.startswith(top.rstrip(os.sep) + os.sep):
        raise ValueError(f"{full!r} (in {shown!r}) resolves to {real!r}, outside the bundle: "
                         f"symlinks that leave the bundle directory are refused.")


def check_path(bundle_dir, rel):
    """The full path of a manifest `files[].path`, refusing anything outside the bundle.

    A path must be relative, POSIX-style and normalised (no `..`, `.`, empty parts or
    backslashes), and must not resolve, through symlinks, outside `bundle_dir`.

    Raises:
        ValueError: naming the path and the rule it breaks.
    """
    if (not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel
            or "\x00" in rel or ":" in rel.split("/")[0]
            or posixpath.normpath(rel) != rel or rel == "." or rel.split("/")[0] == ".."):
        raise ValueError(f"{MANIFEST} lists the file path {str(rel)[:200]!r}; a bundle path "
                         f"must be relative, normalised and inside the bundle (like "
                         f"'model.onnx' or 'saved_model').")
    full = os.path.join(bundle_dir, *rel.split("/"))
    _check_inside(os.path.realpath(bundle_dir), full, rel)
    return full


def check_facts(manifest):
    """Checks what the schema cannot: constants the runtime divides by, shapes it
    relies on. Raises ValueError naming the field."""
    out = manifest["output"]
    for where, pair in (("output/value_range", out["value_range"]),
                        ("output/to_uint8 low/high", (out["to_uint8"]["low"],
                                                      out["to_uint8"]["high"]))):
        low, high = (float(v) for v in pair)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"{MANIFEST} {where} is [{low}, {high}]; it needs finite "
                             f"low < high.")
    latent = manifest["latent"] or {}
    for name in ("loc", "scale"):
        if name in latent and not math.isfinite(float(latent[name])):
            raise ValueError(f"{MANIFEST} latent/{name}={latent[name]!r} must be finite.")
    noise = manifest.get("noise")
    if noise is not None:
        low, high = float(noise["low"]), float(noise["high"])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"{MANIFEST} noise low/high is [{low}, {high}]; it needs finite "
                             f"low < high.")
    for sig_name, sig in manifest["signatures"].items():
        for kind in ("inputs", "outputs"):
            for t in sig[kind]:
                shape = t["shape"]
                if not shape or shape[0] != -1 or any(d < 1 for d in shape[1:]):
                    raise ValueError(f"{MANIFEST} signatures/{sig_name}/{kind} {t['name']!r} "
                                     f"has shape {shape}; the first (batch) dimension must be "
                                     f"-1 and every other dimension fixed (>= 1).")
                if t.get("role") == "latent" and list(shape[1:]) != [latent.get("dim")]:
                    raise ValueError(f"{MANIFEST} signatures/{sig_name} latent input "
                                     f"{t['name']!r} has shape {shape}, but latent/dim is "
                                     f"{latent.get('dim')}.")
                if t.get("role") == "noise" and (
                        noise is None or list(shape[1:]) != list(noise["shape"])):
                    raise ValueError(f"{MANIFEST} signatures/{sig_name} noise input "
                                     f"{t['name']!r} has shape {shape}, but noise is "
                                     f"{noise}: a noise input needs a noise entry of its shape.")
                if (kind == "outputs" and t.get("role") == "image"
                        and list(shape[1:]) != list(out["image_shape"])):
                    raise ValueError(f"{MANIFEST} signatures/{sig_name} image output has shape "
                                     f"{shape}, but output/image_shape is "
                                     f"{out['image_shape']}.")


def check_file(bundle_dir, entry):
    """Raises if the file of a `files[]` entry is missing or its sha256 differs."""
    full = check_path(bundle_dir, entry["path"])
    if not os.path.exists(full):
        raise FileNotFoundError(f"Bundle file {entry['path']!r} listed in {MANIFEST} is missing "
                                f"from bundle_dir={bundle_dir!r}.")
    digest = sha256_path(full)
    if digest != entry["sha256"]:
        raise ValueError(f"sha256 of {entry['path']!r} is {digest}, {MANIFEST} says "
                         f"{entry['sha256']}: the bundle was modified or is incomplete.")
    return full


def read_manifest(bundle_dir):
    """`(raw bytes, parsed JSON)` of `bundle_dir/manifest.json`, with clear errors for a
    missing, oversized, escaping, non-UTF-8, malformed or too deeply nested file."""
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {MANIFEST} in bundle_dir={bundle_dir!r}; expected a "
                                f"directory written by keras_aigc.export.export_bundle.")
    _check_inside(os.path.realpath(bundle_dir), path, MANIFEST)
    with open(path, "rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ValueError(f"{path} is over {MAX_MANIFEST_BYTES} bytes; a keras-aigc manifest "
                         f"is a few KiB. Re-export the bundle.")
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, depth
        kind = "nested too deeply" if isinstance(e, RecursionError) else "not valid JSON"
        raise ValueError(f"{path} is {kind}: {str(e)[:200]}. Re-export the bundle.") from None
    return data, manifest


def load_manifest(bundle_dir, check_files=True, public_key=None):
    """Reads and validates `bundle_dir/manifest.json`; checks every file's sha256.

    Args:
        bundle_dir: str. Export bundle directory.
        check_files: bool. Verify the sha256 of every `files[]` entry. Defaults to `True`.
        public_key: `None` or an Ed25519 public key (PEM path, PEM bytes or key): the
            manifest's detached signature `manifest.json.sig` must verify with it.

    Raises:
        FileNotFoundError: no manifest, or a listed file is missing.
        ValueError: invalid JSON, schema mismatch, a path outside the bundle, an
            inconsistent fact, a sha256 mismatch, or a missing/wrong signature.
    """
    bundle_dir = os.fspath(bundle_dir)
    data, manifest = read_manifest(bundle_dir)
    if public_key is not None:
        from keras_aigc_runtime.signing import verify_signature

        verify_signature(bundle_dir, data, public_key)
    try:
        validate_manifest(manifest)
    except RecursionError:
        raise ValueError(f"{MANIFEST} in {bundle_dir!r} is nested too deeply for its schema."
                         ) from None
    for entry in manifest["files"]:
        check_path(bundle_dir, entry["path"])
    check_facts(manifest)
    if check_files:
        for entry in manifest["files"]:
            check_file(bundle_dir, entry)
    return manifest
