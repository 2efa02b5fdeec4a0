"""C2PA Content Credentials on generated PNGs, with the CAI's `c2pa-python`.

A signed PNG carries a C2PA manifest store (a `caBX` chunk) whose claim lists

- `c2pa.actions.v2`: one `c2pa.created` action with digital source type
  `trainedAlgorithmicMedia` and the software agent (keras-aigc and its version);
- `org.keras-aigc.generation`: the model (name, sha256 and what was hashed: the bundle's
  `manifest.json`, which itself pins every model file by sha256, or the `.keras` file), the
  seed and labels that produced the image, and the UTC time;
- `c2pa.hash.data`: the hash of every other byte of the file (pixels included).

The claim is signed with the key of a credentials directory (see `credentials.py`). A
verifier recomputes the hashes and checks the signature; one changed pixel or one changed
claim byte makes the file `"tampered"`. Whether the *signer* is who they say depends on
the certificate: it is trusted only when its chain ends in a root the verifier trusts
(`trust_anchors=`), and the test chain of `keras-aigc credentials init` never is.

Without credentials `stamp_png` writes plain PNG `tEXt` chunks instead (model sha256, seed,
generator). Anyone can write or edit those: they are a label, and they prove nothing.
"""

import base64
import datetime
import io
import json
import os
import struct
import zlib

from keras_aigc_runtime.provenance.credentials import as_credentials

GENERATION_LABEL = "org.keras-aigc.generation"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
TEXT_PREFIX = "keras-aigc:"
STATUSES = ("valid", "tampered", "unsigned")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def require_c2pa():
    """Imports `c2pa` (c2pa-python) or raises with the install command."""
    try:
        import c2pa
    except ImportError as e:
        raise ImportError(
            "Content Credentials need c2pa-python: pip install \"keras-aigc-runtime[provenance]\" "
            "(or pip install c2pa-python).") from e
    return c2pa


def generation_claims(model_name, model_sha256, seed, labels=None, sha256_of="manifest.json",
                      generator_name="keras-aigc", generator_version=None, created=None):
    """The claims stamped into a generated image.

    Args:
        model_name: str. The model's name (the bundle's `name`, or the run's model).
        model_sha256: str. Hex sha256 identifying the model.
        seed: int or None. Seed of the latent draw.
        labels: sequence of int or None. Class labels (conditional models).
        sha256_of: str. What `model_sha256` hashes (`"manifest.json"` of a bundle, or
            `"model.keras"`).
        generator_name: str. The software that wrote the image.
        generator_version: str. Its version.
        created: str or None. ISO-8601 UTC time; now when `None`.
    """
    if generator_version is None:
        from keras_aigc_runtime import __version__ as generator_version
    return {
        "generator": {"name": generator_name, "version": str(generator_version)},
        "model": {"name": str(model_name), "sha256": str(model_sha256), "sha256_of": sha256_of},
        "seed": None if seed is None else int(seed),
        "labels": None if labels is None else [int(v) for v in labels],
        "created": created or datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
    }


def _manifest_definition(claims):
    gen = claims["generator"]
    return {
        "claim_generator_info": [{"name": gen["name"], "version": gen["version"]}],
        "title": f"{claims['model']['name']} sample",
        "format": "image/png",
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [{
                "action": "c2pa.created",
                "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                "softwareAgent": {"name": gen["name"], "version": gen["version"]},
                "when": claims["created"],
            }]}},
            {"label": GENERATION_LABEL, "data": claims},
        ],
    }


def _context(c2pa, trust_anchors=None):
    settings = {"builder": {"thumbnail": {"enabled": False}}}
    if trust_anchors:
        settings["trust"] = {"trust_anchors": trust_anchors}
        settings["verify"] = {"verify_trust": True}
    return c2pa.Context(c2pa.Settings.from_json(json.dumps(settings)))


def sign_png(png_bytes, claims, credentials):
    """Returns `png_bytes` with a signed C2PA manifest of `claims` embedded.

    Args:
        png_bytes: bytes. A PNG file.
        claims: dict. From `generation_claims`.
        credentials: str path or `Credentials`.
    """
    c2pa = require_c2pa()
    creds = as_credentials(credentials)
    if creds is None:
        raise ValueError("sign_png needs credentials (a directory with key.pem and chain.pem).")
    _check_png(png_bytes)
    info = c2pa.C2paSignerInfo(creds.alg.encode(), creds.chain_pem, creds.key_pem, None)
    try:
        signer = c2pa.Signer.from_info(info)
    except c2pa.C2paError as e:
        raise ValueError(f"Could not load the signing key/certificate in "
                         f"{creds.directory!r}: {e}") from e
    out = io.BytesIO()
    with signer, c2pa.Builder(_manifest_definition(claims), context=_context(c2pa)) as builder:
        builder.sign(signer, "image/png", io.BytesIO(png_bytes), out)
    return out.getvalue()


# ------------------------------------------------------------------- plain text chunks
def _check_png(data):
    if not isinstance(data, (bytes, bytearray)) or not bytes(data).startswith(PNG_SIGNATURE):
        raise ValueError("Not a PNG file (no PNG signature).")


def _chunks(data):
    _check_png(data)
    pos, out = len(PNG_SIGNATURE), []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag = data[pos + 4:pos + 8]
        out.append((tag, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return out


def _chunk(tag, body):
    return struct.pack(">I", len(body)) + tag + body + struct.pack(
        ">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def add_text_chunks(png_bytes, claims):
    """Adds `tEXt` chunks `keras-aigc:model_sha256`, `:seed`, `:generator` (and more).

    These are unsigned labels: anyone can add, remove or edit them. They prove nothing.
    """
    fields = {
        "model_sha256": claims["model"]["sha256"],
        "model_name": claims["model"]["name"],
        "seed": "" if claims.get("seed") is None else str(claims["seed"]),
        "labels": "" if claims.get("labels") is None else ",".join(map(str, claims["labels"])),
        "generator": f"{claims['generator']['name']} {claims['generator']['version']}",
        "created": claims["created"],
    }
    extra = b"".join(_chunk(b"tEXt", (TEXT_PREFIX + k).encode("latin-1") + b"\x00"
                            + v.encode("latin-1", "replace"))
                     for k, v in fields.items())
    chunks = _chunks(bytes(png_bytes))
    out = [PNG_SIGNATURE]
    for tag, body in chunks:
        if tag == b"IEND":
            out.append(extra)
        out.append(_chunk(tag, body))
    return b"".join(out)


def read_text_chunks(png_bytes):
    """`{field: value}` of the `keras-aigc:` tEXt chunks of a PNG (unverified)."""
    fields = {}
    for tag, body in _chunks(bytes(png_bytes)):
        if tag == b"tEXt" and b"\x00" in body:
            key, value = body.split(b"\x00", 1)
            key = key.decode("latin-1")
            if key.startswith(TEXT_PREFIX):
                fields[key[len(TEXT_PREFIX):]] = value.decode("latin-1")
    return fields


def stamp_png(png_bytes, claims, sign=None):
    """Signs `png_bytes` with C2PA when `sign` names credentials, else adds text chunks."""
    creds = as_credentials(sign)
    if creds is None:
        return add_text_chunks(png_bytes, claims)
    return sign_png(png_bytes, claims, creds)


# ------------------------------------------------------------------------ verifying
class Verification:
    """The result of verifying one file.

    Attributes:
        status: str. `"valid"` (signature and every hash check out), `"tampered"` (a
            manifest is present but a hash or the signature fails) or `"unsigned"`.
        trusted: bool or None. Whether the signer chains to one of the trust anchors given;
            `None` when none were given.
        claims: dict or None. The `org.keras-aigc.generation` claims (for unsigned files:
            the unverified text chunks, under `"unverified_text"`).
        signer: str or None. The signing certificate's issuer/subject as C2PA reports it.
        failures: list of str. The C2PA failure codes and explanations.
    """

    def __init__(self, path, status, trusted=None, claims=None, signer=None, failures=(),
                 source_type=None):
        self.path = path
        self.status = status
        self.trusted = trusted
        self.claims = claims
        self.signer = signer
        self.failures = list(failures)
        self.source_type = source_type

    @property
    def ok(self):
        return self.status == "valid" and self.trusted is not False

    def to_dict(self):
        return {"file": self.path, "status": self.status, "trusted": self.trusted,
                "signer": self.signer, "digital_source_type": self.source_type,
                "claims": self.claims, "failures": self.failures}


def verify_png(data, path=None, trust_anchors=None):
    """Verifies the Content Credentials of a PNG.

    Args:
        data: bytes of the file, or a path.
        path: str. Name used in the report.
        trust_anchors: str or None. PEM root certificate(s) the verifier trusts; the
            signer is then checked against them (`Verification.trusted`).

    Returns:
        `Verification`.
    """
    if isinstance(data, (str, os.PathLike)):
        path = path or os.fspath(data)
        with open(data, "rb") as f:
            data = f.read()
    data = bytes(data)
    _check_png(data)
    c2pa = require_c2pa()
    has_store = any(tag == b"caBX" for tag, _ in _chunks(data))
    try:
        with c2pa.Reader("image/png", io.BytesIO(data),
                         context=_context(c2pa, trust_anchors)) as reader:
            report = json.loads(reader.json())
    except c2pa.C2paError as e:
        if not has_store and "ManifestNotFound" in type(e).__name__ + str(e):
            text = read_text_chunks(data)
            return Verification(path, "unsigned",
                                claims={"unverified_text": text} if text else None)
        # A manifest store that cannot even be parsed: the file was changed.
        return Verification(path, "tampered", failures=[f"unreadable manifest: {e}"])
    if not has_store and not report.get("manifests"):
        return Verification(path, "unsigned")
    active = report.get("manifests", {}).get(report.get("active_manifest"), {})
    claims, source_type = None, None
    for assertion in active.get("assertions", []):
        if assertion.get("label") == GENERATION_LABEL:
            claims = dict(assertion.get("data") or {})
            # c2pa stores a list of small ints as a CBOR byte string (read back as base64).
            if isinstance(claims.get("labels"), str):
                claims["labels"] = list(base64.b64decode(claims["labels"]))
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                if action.get("action") == "c2pa.created":
                    source_type = action.get("digitalSourceType")
    sig = active.get("signature_info") or {}
    signer = sig.get("issuer") or sig.get("common_name")
    results = report.get("validation_results", {}).get("activeManifest", {})
    failures = [f"{f.get('code')}: {f.get('explanation', '')}" for f in results.get("failure", [])]
    untrusted_codes = ("signingCredential.untrusted",)
    other = [f"{s.get('code')}: {s.get('explanation', '')}"
             for s in report.get("validation_status", [])
             if s.get("code") not in untrusted_codes
             and f"{s.get('code')}: {s.get('explanation', '')}" not in failures]
    failures = [f for f in failures if not f.startswith(untrusted_codes)] + other
    state = report.get("validation_state")
    status = "tampered" if failures or state == "Invalid" else "valid"
    trusted = None
    if trust_anchors:
        trusted = state == "Trusted"
    return Verification(path, status, trusted=trusted, claims=claims, signer=signer,
                        failures=failures, source_type=source_type)
