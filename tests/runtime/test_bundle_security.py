"""Issue 11: a bundle cannot point outside itself, lie about its model files, or be
tampered with unnoticed when signed. Each case loaded (or crashed later) on 161f78a."""

import json
import os
import shutil

import numpy as np
import pytest

import keras_aigc_runtime
from keras_aigc_runtime import signing


def _copy(bundle, tmp_path, name="copy"):
    dst = str(tmp_path / name)
    shutil.copytree(bundle, dst, symlinks=True)
    return dst


def _edit(bundle, fn):
    path = os.path.join(bundle, "manifest.json")
    with open(path) as f:
        m = json.load(f)
    fn(m)
    with open(path, "w") as f:
        json.dump(m, f)


def _onnx_entry(m):
    return next(f for f in m["files"] if f["path"] == "model.onnx")


def _keys(tmp_path, name):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    pub = tmp_path / f"{name}.pub.pem"
    pub.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, str(pub)


@pytest.mark.parametrize("path", ["../outside.onnx", "/tmp/outside.onnx", "./model.onnx",
                                  "sub/../model.onnx", "a//model.onnx", "..", "C:/x.onnx"])
def test_paths_outside_or_not_normalised_are_refused(dcgan_bundle, tmp_path, path):
    bundle = _copy(dcgan_bundle[1], tmp_path)
    shutil.copy(os.path.join(bundle, "model.onnx"), tmp_path / "outside.onnx")

    def point(m):
        _onnx_entry(m)["path"] = path
    _edit(bundle, point)
    with pytest.raises(ValueError, match=r"must be relative, normalised and inside the bundle"):
        keras_aigc_runtime.load(bundle)


def test_symlink_leaving_the_bundle_is_refused(dcgan_bundle, tmp_path):
    bundle = _copy(dcgan_bundle[1], tmp_path)
    outside = tmp_path / "outside.onnx"
    os.replace(os.path.join(bundle, "model.onnx"), outside)
    os.symlink(outside, os.path.join(bundle, "model.onnx"))  # same bytes, same sha256
    with pytest.raises(ValueError, match=r"outside the bundle: symlinks"):
        keras_aigc_runtime.load(bundle)
    # A symlink inside the bundle is fine.
    inside = os.path.join(bundle, "moved.onnx")
    os.remove(os.path.join(bundle, "model.onnx"))
    shutil.copy(outside, inside)
    os.symlink("moved.onnx", os.path.join(bundle, "model.onnx"))
    assert keras_aigc_runtime.load(bundle).generate(1, seed=0).shape == (1, 8, 8, 1)


def _set(path, value):
    def fn(m):
        target = m
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return fn


def _everywhere(old, new):
    """Renames/reshapes consistently across the manifest: only the file can disagree."""
    def fn(m):
        text = json.dumps(m).replace(old, new)
        m.clear()
        m.update(json.loads(text))
    return fn


LIES = [
    ("to_uint8 low == high", _set(["output", "to_uint8", "high"], -1.0), r"finite low < high"),
    ("value_range reversed", _set(["output", "value_range"], [1.0, -1.0]), r"low < high"),
    ("latent dim 2e9", _set(["latent", "dim"], 2000000000), r"latent/dim is 2000000000"),
    ("latent dim 2e9 everywhere", lambda m: (_set(["latent", "dim"], 2000000000)(m),
                                             _everywhere('[-1, 8]', '[-1, 2000000000]')(m)),
     r"has shape \[-1, 2000000000\].*the file has \[None, 8\]"),
    ("non-batch -1", _everywhere('[-1, 8, 8, 1]', '[-1, -1, 8, 1]'),
     r"every other dimension fixed"),
    ("input renamed", _everywhere('"name": "z"', '"name": "w"'), r"the file has \['z'\]"),
    ("dtype lie", _everywhere('"role": "latent", "dtype": "float32"',
                              '"role": "latent", "dtype": "float16"'),
     r"is float16; the file has float32"),
]


@pytest.mark.parametrize("case", LIES, ids=lambda c: c[0])
def test_manifest_facts_are_checked_against_the_model_file(dcgan_bundle, tmp_path, case):
    _, fn, match = case
    bundle = _copy(dcgan_bundle[1], tmp_path)
    _edit(bundle, fn)
    with pytest.raises(ValueError, match=match):
        keras_aigc_runtime.load(bundle)


@pytest.mark.parametrize("text,match", [
    ("[" * 100000 + "]" * 100000, r"nested too deeply|must be a JSON object"),
    ('{"a": ' * 100000 + "1" + "}" * 100000, r"nested too deeply"),
    ("{\"schema_version\": 1, \"name\": \"\xff\"", r"not valid JSON"),
    ("{", r"not valid JSON"),
])
def test_malformed_manifest_of_any_depth_is_reported(dcgan_bundle, tmp_path, capsys, text,
                                                     match):
    from keras_aigc_runtime.server.main import main

    bundle = _copy(dcgan_bundle[1], tmp_path)
    with open(os.path.join(bundle, "manifest.json"), "w", encoding="latin-1") as f:
        f.write(text)
    with pytest.raises(ValueError, match=match):
        keras_aigc_runtime.load(bundle)
    # keras-aigc-serve reports it and exits 2 (161f78a: an uncaught RecursionError).
    assert main([bundle]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_signed_bundle_refuses_tampering_swaps_missing_signature_and_wrong_key(
        dcgan_bundle, conditional_bundle, tmp_path, capsys):
    from keras_aigc_runtime.server.main import main

    key, pub = _keys(tmp_path, "good")
    _, wrong_pub = _keys(tmp_path, "wrong")
    bundle = _copy(dcgan_bundle[1], tmp_path, "signed")
    signing.sign_bundle(bundle, key)
    g = keras_aigc_runtime.load(bundle, public_key=pub)  # the original loads
    np.testing.assert_array_equal(g.generate(2, seed=3),
                                  keras_aigc_runtime.load(dcgan_bundle[1]).generate(2, seed=3))

    with pytest.raises(ValueError, match=r"does not verify with the given public key"):
        keras_aigc_runtime.load(bundle, public_key=wrong_pub)
    assert main([bundle, "--require-signature", wrong_pub]) == 2
    assert "does not verify" in capsys.readouterr().err

    tampered = _copy(bundle, tmp_path, "tampered")
    _edit(tampered, _set(["output", "to_uint8", "high"], 3.0))
    with pytest.raises(ValueError, match=r"manifest was modified after signing"):
        keras_aigc_runtime.load(tampered, public_key=pub)
    # Unsigned loads do not check signatures: the tampered (valid) values load.
    assert keras_aigc_runtime.load(tampered).manifest["output"]["to_uint8"]["high"] == 3.0

    swapped = _copy(bundle, tmp_path, "swapped")
    shutil.copy(os.path.join(conditional_bundle[1], "model.onnx"),
                os.path.join(swapped, "model.onnx"))
    with pytest.raises(ValueError, match=r"sha256 of 'model.onnx'.*modified"):
        keras_aigc_runtime.load(swapped, public_key=pub)

    missing = _copy(bundle, tmp_path, "missing")
    os.remove(os.path.join(missing, signing.SIGNATURE_FILE))
    with pytest.raises(ValueError, match=r"has no manifest.json.sig.*--sign-key"):
        keras_aigc_runtime.load(missing, public_key=pub)
    assert main([missing, "--require-signature", pub]) == 2

    garbage = _copy(bundle, tmp_path, "garbage")
    with open(os.path.join(garbage, signing.SIGNATURE_FILE), "w") as f:
        f.write("not base64 at all!")
    with pytest.raises(ValueError, match=r"does not verify"):
        keras_aigc_runtime.load(garbage, public_key=pub)

    with pytest.raises(ValueError, match=r"not a PEM or OpenSSH public key"):
        keras_aigc_runtime.load(bundle, public_key=os.path.join(bundle, "manifest.json"))
