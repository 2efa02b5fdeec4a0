"""LiteRT (ai-edge-litert) signature runners with int8 (de)quantization."""

import threading

import numpy as np


def quantize(x, scale, zero_point, dtype):
    """`q = clip(round(x / scale) + zero_point)` in the integer range of `dtype`."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q, scale, zero_point):
    """`real = (q - zero_point) * scale`."""
    return (np.asarray(q, np.float32) - np.float32(zero_point)) * np.float32(scale)


class LiteRTRunner:
    """Runs one signature of a `.tflite` file.

    Float inputs of int8/uint8 tensors are quantized, and int8/uint8 outputs
    dequantized, with the scale and zero point the interpreter reports for that tensor.

    Args:
        path: str. The `.tflite` file.
        key: str. Its signature key (`files[].signatures[].key`).
        num_threads: int or `None`. LiteRT CPU threads (XNNPACK).
    """

    def __init__(self, path, key, num_threads=None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:
            raise ImportError("backend='tflite' needs LiteRT: pip install "
                              "'keras-aigc-runtime[tflite]' (ai-edge-litert).") from e
        self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner(key)
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        # One interpreter holds one set of tensors: calls must not interleave.
        self._lock = threading.Lock()

    def io_spec(self):
        """`{"inputs"|"outputs": {name: (numpy dtype name, shape)}}` of the signature;
        a dynamic dimension is `-1`."""
        def shape(d):
            sig = d.get("shape_signature")
            return [int(v) for v in (sig if sig is not None and len(sig) else d["shape"])]

        return {kind: {name: (np.dtype(d["dtype"]).name, shape(d)) for name, d in det.items()}
                for kind, det in (("inputs", self.inputs), ("outputs", self.outputs))}

    def __call__(self, feed):
        args = {}
        for name, x in feed.items():
            d = self.inputs[name]
            dtype = np.dtype(d["dtype"])
            scale, zero_point = d["quantization"]
            if dtype.kind in "iu" and scale and np.asarray(x).dtype.kind == "f":
                args[name] = quantize(x, scale, zero_point, dtype)
            else:
                args[name] = np.asarray(x).astype(dtype)
        with self._lock:
            res = self.runner(**args)
            res = {k: np.array(v) for k, v in res.items()}  # copy out of the interpreter
        out = {}
        for name, v in res.items():
            scale, zero_point = self.outputs[name]["quantization"]
            out[name] = dequantize(v, scale, zero_point) if scale else v.astype(np.float32)
        return out
