"""Parity of exported artifacts against the Keras model on fresh random inputs."""

import math

import numpy as np

from keras_aigc.export.export_utils import IMAGE, LOG_PROB

# Required parity per quantization: max abs error for float variants, PSNR for int8 ones.
TOLERANCES = {
    "none": {"max_abs_error": 1e-4},
    "float16": {"max_abs_error": 1e-2},
    "dynamic_int8": {"min_psnr_db": 25.0},
    "int8": {"min_psnr_db": 25.0},
}
# A log-likelihood is a float32 sum over every pixel (about -80 nats for an MNIST digit),
# so its fp32 parity is relative: |error| <= 1e-5 * max(1, max |Keras value|).
LOG_PROB_TOLERANCE = {"max_rel_error": 1e-5}
VERIFY_BATCH_SIZES = (1, 7)


def psnr(reference, candidate, peak):
    """Peak signal-to-noise ratio in dB; `None` when the two are identical."""
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(candidate, np.float64))
                        ** 2))
    if mse == 0.0:
        return None
    return 10.0 * math.log10(peak * peak / mse)


def output_peaks(spec, signature, rng, n=256):
    """PSNR peak per output: the value range for images, else the outputs' spread.

    For non-image outputs (posterior loc and scale) the spread is measured once on `n`
    prior-drawn inputs, so the PSNR of a batch of one does not depend on how far apart
    that batch's few values happen to be.
    """
    peaks, ref = {}, None
    for out in signature.outputs:
        if out.role == IMAGE:
            peaks[out.name] = float(spec.value_range[1] - spec.value_range[0])
        else:
            if ref is None:
                ref = spec.keras_outputs(signature, spec.sample_inputs(signature, n, rng))
            peaks[out.name] = float(np.ptp(ref[out.name])) or 1.0
    return peaks


def compare(spec, signature, reference, candidate, batch_size, quantization, what="The file",
            peaks=None):
    """Parity records (one per output) of `candidate` vs `reference` output dicts."""
    records = []
    for out in signature.outputs:
        tol = TOLERANCES[quantization]
        if out.role == LOG_PROB and "max_abs_error" in tol:
            tol = LOG_PROB_TOLERANCE
        ref = np.asarray(reference[out.name], np.float32)
        got = np.asarray(candidate[out.name], np.float32)
        if ref.shape != got.shape:
            raise ValueError(f"{what} does not match the Keras model: {signature.name}/"
                             f"{out.name} has shape "
                             f"{got.shape}, Keras gives {ref.shape} at batch {batch_size}.")
        if peaks and out.name in peaks:
            peak = peaks[out.name]
        elif out.role == IMAGE:
            peak = spec.value_range[1] - spec.value_range[0]
        else:
            peak = float(ref.max() - ref.min()) or 1.0
        err = float(np.max(np.abs(ref - got))) if ref.size else 0.0
        value = psnr(ref, got, peak)
        if "max_rel_error" in tol:
            scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
            passed = bool(np.isfinite(err) and err <= tol["max_rel_error"] * scale)
        elif "max_abs_error" in tol:
            passed = bool(np.isfinite(err) and err <= tol["max_abs_error"])
        else:
            passed = value is None or value >= tol["min_psnr_db"]
        records.append({"signature": signature.name, "batch_size": int(batch_size),
                        "output": out.name, "max_abs_error": err,
                        "psnr_db": None if value is None else round(value, 3),
                        "peak": float(peak), "tolerance": dict(tol),
                        "passed": bool(passed)})
    return records


def verify(spec, signature, run, batch_sizes, quantization, rng, what="The file"):
    """Runs `run(inputs) -> {name: array}` against Keras at each batch size on fresh inputs."""
    peaks = output_peaks(spec, signature, rng)
    records = []
    for n in batch_sizes:
        inputs = spec.sample_inputs(signature, int(n), rng)
        records += compare(spec, signature, spec.keras_outputs(signature, inputs), run(inputs),
                           n, quantization, what, peaks)
    return records


def check(records, what):
    """Raises ValueError naming every failed parity record."""
    bad = [r for r in records if not r["passed"]]
    if bad:
        lines = "; ".join(
            f"{r['signature']}/{r['output']} batch {r['batch_size']}: max_abs_error="
            f"{r['max_abs_error']:.3g}, psnr_db={r['psnr_db']}, required {r['tolerance']}"
            for r in bad)
        raise ValueError(f"{what} does not match the Keras model: {lines}.")
