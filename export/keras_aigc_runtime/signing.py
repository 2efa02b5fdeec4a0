"""Detached Ed25519 signatures over `manifest.json` (which lists every file's sha256).

`manifest.json.sig` holds the base64 of the 64-byte Ed25519 signature of the exact
bytes of `manifest.json`. Since the manifest carries the sha256 of every bundle file
and the runtime checks the files it loads against it, a valid signature covers the
whole bundle. Keys are standard PEM (PKCS#8 private, SubjectPublicKeyInfo public) or
OpenSSH `ssh-ed25519` keys:

```shell
openssl genpkey -algorithm ed25519 -out signing_key.pem
openssl pkey -in signing_key.pem -pubout -out signing_key.pub.pem
```
"""

import base64
import binascii
import os

SIGNATURE_FILE = "manifest.json.sig"
PASSWORD_ENV = "KERAS_AIGC_SIGN_KEY_PASSWORD"


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as e:
        raise ImportError("Signed bundles need the cryptography package: pip install "
                          "cryptography (it comes with keras-aigc-runtime>=0.1).") from e
    return InvalidSignature, serialization, ed25519


def _read_key_bytes(key, what):
    if isinstance(key, (bytes, bytearray)):
        return bytes(key), "<bytes>"
    path = os.fspath(key)
    try:
        with open(path, "rb") as f:
            return f.read(1 << 16), path
    except OSError as e:
        raise ValueError(f"Cannot read the {what} {path!r}: {e.strerror}.") from None


def load_public_key(key):
    """An Ed25519 public key from a PEM/OpenSSH file path, its bytes, or a key object."""
    _, serialization, ed25519 = _crypto()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    data, shown = _read_key_bytes(key, "public key")
    try:
        if data.lstrip().startswith(b"ssh-"):
            loaded = serialization.load_ssh_public_key(data.strip())
        else:
            loaded = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        raise ValueError(f"public key {shown!r} is not a PEM or OpenSSH public key: {e}") \
            from None
    if not isinstance(loaded, ed25519.Ed25519PublicKey):
        raise ValueError(f"public key {shown!r} is a {type(loaded).__name__}; bundle "
                         f"signatures use Ed25519 keys (openssl genpkey -algorithm ed25519).")
    return loaded


def load_private_key(key):
    """An Ed25519 private key from a PEM/OpenSSH file path or bytes. An encrypted key
    takes its password from the `KERAS_AIGC_SIGN_KEY_PASSWORD` environment variable."""
    _, serialization, ed25519 = _crypto()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    data, shown = _read_key_bytes(key, "signing key")
    password = os.environ.get(PASSWORD_ENV)
    password = password.encode() if password else None
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            loaded = serialization.load_ssh_private_key(data, password)
        else:
            loaded = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as e:
        raise ValueError(f"signing key {shown!r} is not a readable PEM or OpenSSH private key "
                         f"(set {PASSWORD_ENV} for an encrypted one): {e}") from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise ValueError(f"signing key {shown!r} is a {type(loaded).__name__}; bundle "
                         f"signatures use Ed25519 keys (openssl genpkey -algorithm ed25519).")
    return loaded


def sign_bundle(bundle_dir, private_key):
    """Writes `bundle_dir/manifest.json.sig` for the bundle's current manifest.

    Args:
        bundle_dir: str. An export bundle.
        private_key: Ed25519 private key (PEM/OpenSSH path, bytes or key object).

    Returns:
        The path of the signature file.
    """
    key = load_private_key(private_key)
    with open(os.path.join(bundle_dir, "manifest.json"), "rb") as f:
        data = f.read()
    sig = base64.b64encode(key.sign(data)) + b"\n"
    path = os.path.join(bundle_dir, SIGNATURE_FILE)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(sig)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def verify_signature(bundle_dir, manifest_bytes, public_key):
    """Raises ValueError unless `manifest.json.sig` is a valid signature of
    `manifest_bytes` by `public_key`."""
    invalid_signature, _, _ = _crypto()
    key = load_public_key(public_key)
    path = os.path.join(bundle_dir, SIGNATURE_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"bundle_dir={bundle_dir!r} has no {SIGNATURE_FILE}, and a signed "
                         f"bundle is required: sign it with `keras-aigc export --sign-key` "
                         f"(or keras_aigc_runtime.signing.sign_bundle).")
    with open(path, "rb") as f:
        raw = f.read(4096)
    try:
        sig = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        sig = b""
    try:
        if len(sig) != 64:
            raise invalid_signature()
        key.verify(sig, manifest_bytes)
    except invalid_signature:
        raise ValueError(f"The signature {SIGNATURE_FILE} of bundle_dir={bundle_dir!r} does "
                         f"not verify with the given public key: the manifest was modified "
                         f"after signing, or it was signed with another key.") from None


def verify_manifest_signature(bundle_dir, public_key):
    """`verify_signature` on the manifest as it is on disk."""
    from keras_aigc_runtime.manifest import read_manifest

    data, _ = read_manifest(os.fspath(bundle_dir))
    verify_signature(bundle_dir, data, public_key)
