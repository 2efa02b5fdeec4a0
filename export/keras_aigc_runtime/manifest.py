"""The bundle format: `manifest.json`'s JSON Schema (schema_version 1), its validation
and the sha256 of bundle files.

The runtime owns the format: `keras_aigc.export` (the writer) imports this module, and
`manifest.schema.json` next to it is the only copy of the schema.
"""

import hashlib
import json
import os

SCHEMA_VERSION = 1
SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest.schema.json")
MANIFEST = "manifest.json"


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
    for root, _, files in os.walk(path):
        for fname in files:
            full = os.path.join(root, fname)
            lines.append((os.path.relpath(full, path).replace(os.sep, "/"), sha256_file(full)))
    text = "".join(f"{digest} {rel}\n" for rel, digest in sorted(lines))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_file(bundle_dir, entry):
    """Raises if the file of a `files[]` entry is missing or its sha256 differs."""
    full = os.path.join(bundle_dir, *entry["path"].split("/"))
    if not os.path.exists(full):
        raise FileNotFoundError(f"Bundle file {entry['path']!r} listed in {MANIFEST} is missing "
                                f"from bundle_dir={bundle_dir!r}.")
    digest = sha256_path(full)
    if digest != entry["sha256"]:
        raise ValueError(f"sha256 of {entry['path']!r} is {digest}, {MANIFEST} says "
                         f"{entry['sha256']}: the bundle was modified or is incomplete.")
    return full


def load_manifest(bundle_dir, check_files=True):
    """Reads and validates `bundle_dir/manifest.json`; checks every file's sha256.

    Args:
        bundle_dir: str. Export bundle directory.
        check_files: bool. Verify the sha256 of every `files[]` entry. Defaults to `True`.

    Raises:
        FileNotFoundError: no manifest, or a listed file is missing.
        ValueError: invalid JSON, schema mismatch, or a sha256 mismatch.
    """
    bundle_dir = os.fspath(bundle_dir)
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {MANIFEST} in bundle_dir={bundle_dir!r}; expected a "
                                f"directory written by keras_aigc.export.export_bundle.")
    try:
        with open(path) as f:
            manifest = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
    validate_manifest(manifest)
    if check_files:
        for entry in manifest["files"]:
            check_file(bundle_dir, entry)
    return manifest
