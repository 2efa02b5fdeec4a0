"""Signing credentials for Content Credentials: a directory with a key and a chain.

A credentials directory holds

- `key.pem`: the signer's private key (PKCS#8 PEM, ECDSA P-256 -> `es256`);
- `chain.pem`: the signer's certificate followed by its intermediate(s), PEM;
- `root.pem` (optional): the root certificate, the *trust anchor* a verifier may choose to
  trust (`keras-aigc verify-image --trust root.pem`).

Use a key and certificate from a certificate authority that C2PA validators trust for
anything other people will check. `init_test_credentials` makes a local, self-made chain
for development and tests: anyone can make one, so it proves only that the same key
signed two files, never who owns the key.
"""

import datetime
import os

KEY_FILE = "key.pem"
CHAIN_FILE = "chain.pem"
ROOT_FILE = "root.pem"
README_FILE = "README.txt"

UNTRUSTED_NOTICE = (
    "This is a LOCAL TEST certificate chain made by `keras-aigc credentials init`. It is NOT "
    "trusted by any C2PA validator: a signature made with it shows that the file is unchanged "
    "since this key signed it, not who signed it. Use a certificate from a trusted CA for "
    "files you hand to others, and never use this key in production."
)


def _require_cryptography():
    try:
        import cryptography  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "Making test credentials needs the `cryptography` package: "
            "pip install \"keras-aigc-runtime[provenance]\"") from e


def init_test_credentials(directory, common_name="keras-aigc local test signer", days=365,
                          overwrite=False):
    """Writes a new, untrusted root -> intermediate -> signer chain into `directory`.

    Args:
        directory: str. Created if missing. Must not already hold a key unless `overwrite`.
        common_name: str. Subject CN of the signing certificate.
        days: int. Validity of the certificates.
        overwrite: bool. Replace existing credentials.

    Returns:
        dict with the paths of `key`, `chain` and `root`.

    Example:

    ```python
    from keras_aigc_runtime.provenance import init_test_credentials
    paths = init_test_credentials("creds/")   # then: g.save_png("a.png", 4, sign="creds/")
    ```
    """
    _require_cryptography()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}.")
    os.makedirs(directory, exist_ok=True)
    key_path = os.path.join(directory, KEY_FILE)
    if os.path.exists(key_path) and not overwrite:
        raise FileExistsError(f"{key_path} exists; pass overwrite=True (--force) to replace "
                              f"the credentials in {directory}.")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keras-aigc local test (UNTRUSTED)"),
        ])

    def certificate(key, subject, issuer_key, issuer, ca, path_length=None):
        usage = dict(digital_signature=True, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                     crl_sign=ca, encipher_only=False, decipher_only=False)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), True)
                   .add_extension(x509.KeyUsage(**usage), True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  False))
        if not ca:  # C2PA signers need an EKU C2PA accepts; emailProtection is one.
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        if issuer_key is not key:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                False)
        return builder.sign(issuer_key, hashes.SHA256())

    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root_name, inter_name = name("keras-aigc test root CA"), name("keras-aigc test intermediate")
    root = certificate(root_key, root_name, root_key, root_name, True, 1)
    inter = certificate(inter_key, inter_name, root_key, root_name, True, 0)
    leaf = certificate(leaf_key, name(common_name), inter_key, inter_name, False)

    def pem(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    paths = {"key": key_path, "chain": os.path.join(directory, CHAIN_FILE),
             "root": os.path.join(directory, ROOT_FILE)}
    key_bytes = leaf_key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    # Write to temporary names, then rename: no half-written credentials after a failure.
    for kind, data in (("chain", pem(leaf) + pem(inter)), ("root", pem(root)),
                       ("key", key_bytes)):
        tmp = paths[kind] + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     0o600 if kind == "key" else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, paths[kind])
    with open(os.path.join(directory, README_FILE), "w") as f:
        f.write(UNTRUSTED_NOTICE + "\n\nkey.pem: private key (keep secret)\n"
                "chain.pem: signer certificate + intermediate\n"
                "root.pem: the test root; verifiers who choose to trust it pass --trust root.pem\n")
    return paths


class Credentials:
    """A loaded credentials directory (see the module docstring).

    Args:
        directory: str. Holds `key.pem` and `chain.pem` (and optionally `root.pem`).
        alg: str. C2PA signing algorithm for the key. Defaults to `"es256"`.
    """

    def __init__(self, directory, alg="es256"):
        self.directory = str(directory)
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(
                f"Signing credentials directory {self.directory!r} does not exist; make a "
                f"test one with `keras-aigc credentials init {self.directory}`.")
        missing = [f for f in (KEY_FILE, CHAIN_FILE)
                   if not os.path.isfile(os.path.join(self.directory, f))]
        if missing:
            raise FileNotFoundError(
                f"Signing credentials directory {self.directory!r} lacks {missing}; it needs "
                f"{KEY_FILE} (private key) and {CHAIN_FILE} (certificate chain).")
        with open(os.path.join(self.directory, KEY_FILE), "rb") as f:
            self.key_pem = f.read()
        with open(os.path.join(self.directory, CHAIN_FILE), "rb") as f:
            self.chain_pem = f.read()
        for label, data in (("key", self.key_pem), ("chain", self.chain_pem)):
            if b"-----BEGIN" not in data:
                raise ValueError(f"{label} file in {self.directory!r} is not PEM.")
        root = os.path.join(self.directory, ROOT_FILE)
        self.root_path = root if os.path.isfile(root) else None
        self.alg = alg

    def __repr__(self):
        return f"Credentials({self.directory!r}, alg={self.alg!r})"


def as_credentials(sign):
    """`None`, a `Credentials` or a directory path -> `Credentials` or `None`."""
    if sign is None or sign is False:
        return None
    if isinstance(sign, Credentials):
        return sign
    if isinstance(sign, (str, os.PathLike)):
        return Credentials(os.fspath(sign))
    raise ValueError(f"sign must be None, a credentials directory path or a Credentials, "
                     f"got {type(sign).__name__}.")
