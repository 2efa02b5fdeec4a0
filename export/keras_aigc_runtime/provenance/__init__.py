"""Provenance for generated images: C2PA Content Credentials and an invisible watermark.

TensorFlow-free (it lives in the runtime, which writes PNGs too); `keras_aigc` imports it
from here. `c2pa-python` and `cryptography` are imported only when signing or verifying
(extra `provenance`).
"""

from keras_aigc_runtime.provenance.content_credentials import (
    STATUSES,
    Verification,
    add_text_chunks,
    generation_claims,
    read_text_chunks,
    sign_png,
    stamp_png,
    verify_png,
)
from keras_aigc_runtime.provenance.credentials import (
    UNTRUSTED_NOTICE,
    Credentials,
    init_test_credentials,
)

__all__ = ["STATUSES", "Verification", "add_text_chunks", "generation_claims",
           "read_text_chunks", "sign_png", "stamp_png", "verify_png", "UNTRUSTED_NOTICE",
           "Credentials", "init_test_credentials"]
