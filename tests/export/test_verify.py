import math

import numpy as np
import pytest

from keras_aigc.export import export_spec
from keras_aigc.export import verify as verify_lib
from tests.export.export_helpers import tiny_dcgan


def test_psnr_known_values():
    ref = np.zeros((2, 4, 4, 1), np.float32)
    # mse = 0.01, peak 2: 10 log10(4 / 0.01) = 26.0206 dB.
    assert verify_lib.psnr(ref, ref + 0.1, 2.0) == pytest.approx(10 * math.log10(400.0))
    assert verify_lib.psnr(ref, ref, 2.0) is None


def test_compare_applies_the_tolerance_of_each_quantization():
    spec = export_spec(tiny_dcgan())
    sig = spec.signature("generate")
    ref = {"image": np.zeros((3, 8, 8, 1), np.float32)}
    close = {"image": ref["image"] + 5e-5}
    off = {"image": ref["image"] + 5e-3}
    noisy = {"image": ref["image"] + 0.2}  # PSNR = 10 log10(4 / 0.04) = 20 dB
    assert verify_lib.compare(spec, sig, ref, close, 3, "none")[0]["passed"]
    assert not verify_lib.compare(spec, sig, ref, off, 3, "none")[0]["passed"]
    assert verify_lib.compare(spec, sig, ref, off, 3, "float16")[0]["passed"]
    (rec,) = verify_lib.compare(spec, sig, ref, noisy, 3, "int8")
    assert rec["psnr_db"] == pytest.approx(20.0) and not rec["passed"]
    with pytest.raises(ValueError, match=r"X does not match.*generate/image batch 3.*psnr_db=20"):
        verify_lib.check([rec], "X")
    with pytest.raises(ValueError, match=r"has shape \(2, 8, 8, 1\), Keras gives \(3, 8, 8, 1\)"):
        verify_lib.compare(spec, sig, ref, {"image": ref["image"][:2]}, 3, "none")


def test_log_prob_outputs_are_compared_relative_to_their_magnitude():
    from keras_aigc.export.export_utils import LOG_PROB, Signature, TensorInfo

    spec = export_spec(tiny_dcgan())
    sig = Signature("log_prob", None, [], [TensorInfo("log_prob", LOG_PROB, "float32", (None,))])
    ref = {"log_prob": np.array([-80.0, -120.0, -95.0], np.float32)}
    # 1e-3 absolute is 8e-6 of 120: inside max_rel_error=1e-5, though 10x fp32's 1e-4.
    (rec,) = verify_lib.compare(spec, sig, ref, {"log_prob": ref["log_prob"] + 1e-3}, 3, "none")
    assert rec["passed"] and rec["tolerance"] == {"max_rel_error": 1e-5}
    assert rec["max_abs_error"] == pytest.approx(1e-3, rel=1e-2)
    (rec,) = verify_lib.compare(spec, sig, ref, {"log_prob": ref["log_prob"] + 2e-3}, 3, "none")
    assert not rec["passed"]  # 2e-3 > 1e-5 * 120
    # Values below 1 in magnitude are held to 1e-5 absolute.
    small = {"log_prob": np.array([-0.5], np.float32)}
    assert not verify_lib.compare(spec, sig, small, {"log_prob": small["log_prob"] + 2e-5}, 1,
                                  "none")[0]["passed"]


def test_output_peaks():
    from tests.export.export_helpers import tiny_vae

    spec = export_spec(tiny_vae())
    rng = np.random.default_rng(0)
    assert verify_lib.output_peaks(spec, spec.signature("decode"), rng) == {"image": 1.0}
    peaks = verify_lib.output_peaks(spec, spec.signature("encode"), rng)
    ref = spec.keras_outputs(spec.signature("encode"),
                             spec.sample_inputs(spec.signature("encode"), 256,
                                                np.random.default_rng(0)))
    # Same inputs (same seed, drawn the same way): the peak is the outputs' spread.
    assert peaks == pytest.approx({k: float(np.ptp(v)) for k, v in ref.items()})
