"""Provider choice of the ONNX Runtime backend."""

import logging

from keras_aigc_runtime import onnx_backend


def test_cuda_first_with_heuristic_conv_search_when_available():
    assert onnx_backend.default_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}),
        "CPUExecutionProvider"]
    assert onnx_backend.default_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_fallback_to_cpu_is_logged(dcgan_bundle, caplog):
    import os

    path = os.path.join(dcgan_bundle[1], "model.onnx")
    # Asking for a provider this build may lack: ORT drops it, the runner says so.
    wanted = "CUDAExecutionProvider"
    with caplog.at_level(logging.INFO, logger="keras_aigc_runtime"):
        runner = onnx_backend.OnnxRunner(path, providers=[wanted, "CPUExecutionProvider"],
                                         intra_op_num_threads=1)
    if wanted in runner.providers:  # a GPU machine: nothing fell back
        assert any("uses" in r.message for r in caplog.records)
    else:
        assert runner.providers == ["CPUExecutionProvider"]
        assert any("falling back to CPU" in r.message and wanted in r.message
                   for r in caplog.records)


def test_session_options_preset():
    import onnxruntime as ort

    opts = onnx_backend.session_options(intra_op_num_threads=3, inter_op_num_threads=1)
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (3, 1)
    assert onnx_backend.session_options().intra_op_num_threads == 0  # ORT's default
