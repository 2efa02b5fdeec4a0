"""int8 (de)quantization of the LiteRT backend on known values."""

import numpy as np

from keras_aigc_runtime.litert_backend import dequantize, quantize


def test_quantize_rounds_offsets_and_saturates():
    q = quantize(np.array([0.0, 0.125, 0.375, 0.7, -40.0, 40.0]), 0.25, 3, np.int8)
    # x / 0.25 = 0, 0.5 (half to even: 0), 1.5 (-> 2), 2.8 (-> 3); plus 3; then saturate.
    np.testing.assert_array_equal(q, np.array([3, 3, 5, 6, -128, 127], np.int8))
    assert q.dtype == np.int8


def test_dequantize_is_scale_times_offset_value():
    np.testing.assert_allclose(dequantize(np.array([3, -128, 127], np.int8), 0.5, 3),
                               [0.0, -65.5, 62.0])
