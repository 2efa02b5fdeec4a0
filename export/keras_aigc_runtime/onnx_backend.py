"""ONNX Runtime sessions: CUDA when available (HEURISTIC conv algo search), else CPU."""

import logging

import numpy as np

logger = logging.getLogger("keras_aigc_runtime")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def default_providers(available):
    """CUDA first (with `cudnn_conv_algo_search=HEURISTIC`) when this onnxruntime has it.

    HEURISTIC avoids cuDNN's EXHAUSTIVE benchmark on every new input shape, which a
    server with dynamic batching would otherwise pay once per distinct batch size.
    """
    if CUDA in available:
        return [(CUDA, {"cudnn_conv_algo_search": "HEURISTIC"}), CPU]
    return [CPU]


def session_options(intra_op_num_threads=None, inter_op_num_threads=None):
    """The SessionOptions preset the runtime uses for every bundle file.

    All graph optimisations (ORT_ENABLE_ALL: constant folding, fusions and, on CPU, the
    hardware-specific NCHWc layout of the convolutions; the bundle's ONNX file is already
    rewritten offline so that its transposed convolutions are Convs those kernels take),
    sequential execution (a generator is a chain: parallel execution only adds
    scheduling), and thread counts from the caller (`load(num_threads=...)`,
    `keras-aigc-serve --threads`), else ORT's default of one intra-op thread per
    physical core.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if intra_op_num_threads is not None:
        opts.intra_op_num_threads = int(intra_op_num_threads)
    if inter_op_num_threads is not None:
        opts.inter_op_num_threads = int(inter_op_num_threads)
    return opts


class OnnxRunner:
    """Runs one ONNX file of a bundle.

    Args:
        path: str. The `.onnx` file.
        providers: list or `None`. ONNX Runtime providers; `None` picks CUDA when
            available (see `default_providers`), else CPU.
        intra_op_num_threads: int or `None`. Threads inside one operator (ORT default:
            one per physical core).
        inter_op_num_threads: int or `None`. Threads across operators.
    """

    def __init__(self, path, providers=None, intra_op_num_threads=None,
                 inter_op_num_threads=None):
        import onnxruntime as ort

        opts = session_options(intra_op_num_threads, inter_op_num_threads)
        requested = list(providers) if providers else default_providers(
            ort.get_available_providers())
        self.session = ort.InferenceSession(str(path), opts, providers=requested)
        # ORT silently drops a provider that fails to initialise (missing CUDA/cuDNN
        # libraries): check what the session really got.
        self.providers = self.session.get_providers()
        wanted = [p if isinstance(p, str) else p[0] for p in requested]
        if wanted[0] != CPU and wanted[0] not in self.providers:
            logger.warning("ONNX Runtime could not use %s for %s (session providers: %s); "
                           "falling back to CPU.", wanted[0], path, self.providers)
        else:
            logger.info("ONNX Runtime session for %s uses %s.", path, self.providers)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}

    def io_spec(self):
        """`{"inputs"|"outputs": {name: (numpy dtype name, shape)}}`; a symbolic
        dimension is `None`."""
        def dims(shape):
            return [d if isinstance(d, int) and d >= 0 else None for d in shape]

        def dtype(t):  # "tensor(float)" -> float32
            name = t[len("tensor("):-1]
            return {"float": "float32", "double": "float64", "float16": "float16"}.get(name,
                                                                                     name)

        return {kind: {t.name: (dtype(t.type), dims(t.shape)) for t in tensors}
                for kind, tensors in (("inputs", self.session.get_inputs()),
                                      ("outputs", self.session.get_outputs()))}

    def __call__(self, feed):
        res = self.session.run(self.output_names, {k: np.ascontiguousarray(v)
                                                   for k, v in feed.items()})
        return {k: np.asarray(v, np.float32) for k, v in zip(self.output_names, res, strict=True)}
