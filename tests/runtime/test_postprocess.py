"""The manifest's post-processing and prior on known values."""

import numpy as np
import pytest

from keras_aigc_runtime.postprocess import sample_latents, to_uint8

SPEC = {"formula": "", "low": -1.0, "high": 1.0, "rounding": "half_to_even"}


def test_to_uint8_known_values():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 3.0], np.float32)
    # 0.0 -> 127.5, which rounds half to even -> 128; out-of-range values clip.
    np.testing.assert_array_equal(to_uint8(x, SPEC), [0, 0, 128, 255, 255])
    identity = {**SPEC, "low": 0.0, "high": 255.0}
    np.testing.assert_array_equal(to_uint8(np.array([0.5, 1.5, 2.5, 254.5]), identity),
                                  [0, 2, 2, 254])


def test_sample_latents_is_loc_plus_scale_normal():
    latent = {"distribution": "normal", "loc": 1.0, "scale": 2.0, "dim": 3, "dtype": "float32"}
    z = sample_latents(latent, 4, np.random.default_rng(0))
    ref = 1.0 + 2.0 * np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_allclose(z, ref.astype(np.float32))
    assert z.dtype == np.float32
    with pytest.raises(ValueError, match=r"distribution='uniform' is not supported"):
        sample_latents({**latent, "distribution": "uniform"}, 1, np.random.default_rng(0))
