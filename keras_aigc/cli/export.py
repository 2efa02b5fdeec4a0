"""`keras-aigc export RUN_DIR|MODEL.keras`: write a verified export bundle."""

import os
import sys


def add_parser(subparsers):
    from keras_aigc.export.bundle import FORMATS, ONNX_QUANTIZATIONS, QUANTIZATIONS

    p = subparsers.add_parser(
        "export", help="Export a trained model to a verified SavedModel/TFLite/ONNX bundle.",
        description="Export a trained model (a run directory holding model.keras, or a .keras "
                    "file) to a bundle directory with manifest.json. Every file is checked "
                    "against the Keras model before the bundle appears.")
    p.add_argument("source", help="Run directory (with model.keras) or a .keras file.")
    p.add_argument("--formats", nargs="+", default=None, metavar="FORMAT",
                   help=f"Formats to write, from {list(FORMATS)} (default: the formats the "
                        "model supports among saved_model, tflite and onnx).")
    p.add_argument("--quantize", nargs="*", default=[], metavar="QUANT",
                   help=f"Extra TFLite variants, from {list(QUANTIZATIONS)}.")
    p.add_argument("--onnx-quantize", nargs="*", default=[], metavar="QUANT",
                   help=f"Extra ONNX variants (model_QUANT.onnx, float32 inputs and outputs), "
                        f"from {list(ONNX_QUANTIZATIONS)}; float16 needs "
                        f"onnxconverter-common (pip install \"keras-aigc[onnx-fp16]\").")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None, metavar="N",
                   help="Fixed-batch TFLite files for these batch sizes (default: one "
                        "dynamic-batch file).")
    p.add_argument("--output", default=None,
                   help="Bundle directory (default: RUN_DIR/export, or next to the .keras file).")
    p.add_argument("--name", default=None, help="Bundle name (default: the model's name).")
    p.add_argument("--overwrite", action="store_true", help="Replace an existing bundle.")
    p.add_argument("--sign-key", default=None, metavar="KEY",
                   help="Ed25519 private key (PEM or OpenSSH file) to write a detached "
                        "signature manifest.json.sig (keras-aigc-serve --require-signature); "
                        "an encrypted key reads its password from KERAS_AIGC_SIGN_KEY_PASSWORD.")
    p.set_defaults(func=main)
    return p


def default_output(source):
    if os.path.isdir(source):
        return os.path.join(source, "export")
    return os.path.splitext(source)[0] + "_export"


def main(args, stream=None):
    stream = stream or sys.stdout  # read at call time (pytest's capsys swaps it)
    from keras_aigc.cli.paths import load_model, resolve_model_path
    from keras_aigc.export import (
        FORMATS,
        check_export_args,
        check_onnx_quantize,
        check_out_dir,
        default_formats,
        export_bundle,
    )

    # Argument errors first, before the slow model load; without --formats the model's
    # own formats are known only once it is loaded (checked again then).
    formats, quantize, batch_sizes = check_export_args(args.formats or FORMATS, args.quantize,
                                                       args.batch_sizes)
    onnx_quantize = check_onnx_quantize(getattr(args, "onnx_quantize", []), formats)
    path = resolve_model_path(args.source)
    output = args.output or default_output(args.source)
    check_out_dir(output, args.overwrite)
    if args.sign_key is not None:  # a bad key fails before the slow export
        try:
            from keras_aigc_runtime.signing import load_private_key
        except ImportError as e:
            raise ImportError("--sign-key needs keras-aigc-runtime and cryptography: pip "
                              "install -e ./export 'keras-aigc[sign]'") from e

        load_private_key(args.sign_key)
    model = load_model(path)
    if args.formats is None:
        formats = default_formats(model, batch_sizes)
        check_export_args(formats, quantize, batch_sizes)
        check_onnx_quantize(onnx_quantize, formats)
    manifest = export_bundle(model, output, formats=formats, quantize=quantize,
                             batch_sizes=batch_sizes, overwrite=args.overwrite, name=args.name,
                             onnx_quantize=onnx_quantize)
    if args.sign_key is not None:
        from keras_aigc_runtime.signing import sign_bundle

        print(f"Signature: {sign_bundle(output, args.sign_key)}", file=stream)
    print(f"Bundle: {output}", file=stream)
    for f in manifest["files"]:
        worst = max((p["max_abs_error"] for p in f["parity"]), default=0.0)
        psnrs = [p["psnr_db"] for p in f["parity"] if p["psnr_db"] is not None]
        psnr = f", min PSNR {min(psnrs):.1f} dB" if psnrs and f["quantization"] != "none" else ""
        print(f"  {f['path']:<32} {f['format']:<12} {f['quantization']:<13} "
              f"max|err| {worst:.2e}{psnr}", file=stream)
    print(serve_hint(output, manifest), file=stream)
    return 0


def serve_hint(output, manifest):
    """The served model name and the exact command that serves the bundle."""
    import shlex

    formats = {f["format"] for f in manifest["files"]}
    backend = "onnx" if "onnx" in formats else ("tflite" if "tflite" in formats else None)
    if backend is None:
        return (f"Served model name: {manifest['name']} (this bundle has no ONNX or TFLite "
                "file, so keras-aigc-serve cannot load it; export with --formats onnx).")
    command = f"keras-aigc-serve {shlex.quote(os.path.abspath(output))}"
    if backend != "onnx":
        command += f" --backend {backend}"
    return (f"Served model name: {manifest['name']}\n"
            f"Serve it with:     {command}\n"
            f"(add --host 0.0.0.0 to accept connections from other machines)")
