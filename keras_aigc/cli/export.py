"""`keras-aigc export RUN_DIR|MODEL.keras`: write a verified export bundle."""

import os
import sys


def add_parser(subparsers):
    from keras_aigc.export.bundle import FORMATS, QUANTIZATIONS

    p = subparsers.add_parser(
        "export", help="Export a trained model to a verified SavedModel/TFLite/ONNX bundle.",
        description="Export a trained model (a run directory holding model.keras, or a .keras "
                    "file) to a bundle directory with manifest.json. Every file is checked "
                    "against the Keras model before the bundle appears.")
    p.add_argument("source", help="Run directory (with model.keras) or a .keras file.")
    p.add_argument("--formats", nargs="+", default=["saved_model", "tflite", "onnx"],
                   metavar="FORMAT", help=f"Formats to write, from {list(FORMATS)}.")
    p.add_argument("--quantize", nargs="*", default=[], metavar="QUANT",
                   help=f"Extra TFLite variants, from {list(QUANTIZATIONS)}.")
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


def resolve_model_path(source):
    """`source` as a `.keras` file: itself, or `model.keras` inside a run directory."""
    if os.path.isdir(source):
        path = os.path.join(source, "model.keras")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Run directory source={source!r} holds no model.keras.")
        return path
    if not os.path.isfile(source):
        raise FileNotFoundError(f"source={source!r} is neither a run directory nor a file.")
    if not source.endswith(".keras"):
        raise ValueError(f"source={source!r} must be a run directory or a .keras file.")
    return source


def default_output(source):
    if os.path.isdir(source):
        return os.path.join(source, "export")
    return os.path.splitext(source)[0] + "_export"


def main(args, stream=None):
    stream = stream or sys.stdout  # read at call time (pytest's capsys swaps it)
    import keras

    from keras_aigc.export import export_bundle
    from keras_aigc.export.bundle import (
        FORMATS,
        QUANTIZATIONS,
        _check_batch_sizes,
        _check_choices,
        _check_out_dir,
    )

    # Argument errors first, before the slow model load.
    _check_choices(args.formats, FORMATS, "formats")
    _check_choices(args.quantize, QUANTIZATIONS, "quantize")
    _check_batch_sizes(args.batch_sizes)
    path = resolve_model_path(args.source)
    output = args.output or default_output(args.source)
    _check_out_dir(output, args.overwrite)
    if args.sign_key is not None:  # a bad key fails before the slow export
        try:
            from keras_aigc_runtime.signing import load_private_key
        except ImportError as e:
            raise ImportError("--sign-key needs keras-aigc-runtime and cryptography: pip "
                              "install -e ./export 'keras-aigc[sign]'") from e

        load_private_key(args.sign_key)
    import keras_aigc.models  # noqa: F401  (registers the model classes for loading)

    # safe_mode refuses to deserialize lambdas / arbitrary code from the file.
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    manifest = export_bundle(model, output, formats=tuple(args.formats),
                             quantize=tuple(args.quantize), batch_sizes=args.batch_sizes,
                             overwrite=args.overwrite, name=args.name)
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
    return 0
