"""Manifest checks of the runtime: one schema for writer and reader, versions, sha256."""

import json
import os
import shutil

import pytest

from keras_aigc_runtime import manifest as manifest_lib
from tests.runtime.conftest import ROOT


def test_the_schema_exists_once_and_the_writer_uses_it():
    from keras_aigc.export import bundle

    assert not os.path.exists(os.path.join(ROOT, "keras_aigc", "export", "manifest.schema.json"))
    assert bundle.validate_manifest is manifest_lib.validate_manifest
    assert bundle.SCHEMA_PATH == manifest_lib.SCHEMA_PATH


def test_load_manifest_accepts_an_exported_bundle(dcgan_bundle):
    _, bundle = dcgan_bundle
    m = manifest_lib.load_manifest(bundle)
    assert m["schema_version"] == 1 and m["latent"]["dim"] == 8
    for entry in m["files"]:
        path = os.path.join(bundle, entry["path"])
        assert manifest_lib.sha256_path(path) == entry["sha256"]


def _copy(bundle, tmp_path):
    dst = str(tmp_path / "copy")
    shutil.copytree(bundle, dst)
    return dst


def _edit(bundle, fn):
    path = os.path.join(bundle, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    fn(m)
    with open(path, "w") as f:
        json.dump(m, f)


def test_other_schema_version_is_refused(dcgan_bundle, tmp_path):
    bundle = _copy(dcgan_bundle[1], tmp_path)
    _edit(bundle, lambda m: m.update(schema_version=2))
    with pytest.raises(ValueError, match=r"schema_version=2 is not supported.*schema_version 1"):
        manifest_lib.load_manifest(bundle)


def test_schema_violation_names_the_field(dcgan_bundle, tmp_path):
    bundle = _copy(dcgan_bundle[1], tmp_path)
    _edit(bundle, lambda m: m["latent"].update(dim=0))
    with pytest.raises(ValueError, match=r"latent/dim"):
        manifest_lib.load_manifest(bundle)


def test_modified_file_fails_its_sha256(dcgan_bundle, tmp_path):
    bundle = _copy(dcgan_bundle[1], tmp_path)
    with open(os.path.join(bundle, "model.onnx"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match=r"sha256 of 'model.onnx'.*modified"):
        manifest_lib.load_manifest(bundle)


def test_missing_file_and_missing_manifest(dcgan_bundle, tmp_path):
    bundle = _copy(dcgan_bundle[1], tmp_path)
    os.remove(os.path.join(bundle, "model.tflite"))
    with pytest.raises(FileNotFoundError, match=r"'model.tflite'.*missing"):
        manifest_lib.load_manifest(bundle)
    with pytest.raises(FileNotFoundError, match=r"No manifest.json in bundle_dir="):
        manifest_lib.load_manifest(str(tmp_path))


def test_malformed_manifest_json(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"is not valid JSON"):
        manifest_lib.load_manifest(str(tmp_path))
