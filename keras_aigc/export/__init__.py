"""Export to a verified bundle: SavedModel, TFLite (LiteRT) and ONNX, plus `manifest.json`."""

from keras_aigc.export.bundle import (
    FORMATS,
    ONNX_QUANTIZATIONS,
    QUANTIZATIONS,
    check_export_args,
    check_onnx_quantize,
    check_out_dir,
    default_formats,
    export_bundle,
    load_manifest,
    validate_manifest,
)
from keras_aigc.export.export_utils import ExportSpec, Signature, TensorInfo, export_spec

__all__ = ["FORMATS", "QUANTIZATIONS", "ONNX_QUANTIZATIONS", "check_onnx_quantize", "export_bundle", "check_export_args", "check_out_dir", "default_formats", "load_manifest", "validate_manifest",
           "export_spec", "ExportSpec", "Signature", "TensorInfo"]
