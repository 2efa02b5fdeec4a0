"""`keras-aigc sample RUN_DIR|MODEL.keras`: a PNG grid (and optionally .npy) of samples."""

import os

import numpy as np


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sample", help="Generate images from a trained model into a PNG grid.",
        description="Generate images from a run directory (its model.keras) or a .keras file.")
    p.add_argument("model", help="A run directory written by `keras-aigc train`, or a .keras file.")
    p.add_argument("--num-samples", "--num", dest="num", type=int, default=64,
                   help="Number of images (default 64); the same flag as `keras-aigc evaluate` "
                        "(--num is a deprecated alias).")
    p.add_argument("--seed", type=int, default=0, help="Latent seed (default 0).")
    p.add_argument("--labels", type=str, default=None,
                   help="Comma-separated class labels for conditional models (cycled).")
    p.add_argument("--output", default=None,
                   help="PNG path (default: <run dir>/samples/sample_seed<seed>.png).")
    p.add_argument("--npy", default=None, help="Also save the images as uint8 .npy here.")
    p.add_argument("--sign", default=None, metavar="DIR",
                   help="Sign the PNG with C2PA Content Credentials using the key and chain "
                        "in DIR (see `keras-aigc credentials init`). Without it the PNG gets "
                        "unsigned text chunks (model sha256, seed, generator) that prove "
                        "nothing.")
    p.add_argument("--watermark", default=None, metavar="PAYLOAD",
                   help="Embed an invisible DWT-DCT watermark carrying PAYLOAD (32 bits, "
                        "decimal or 0x-hex; 'model' = the first 8 hex digits of the model "
                        "file's sha256). Grids under 128 px a side are upscaled first (as "
                        "28x28 MNIST must be). Read it with `keras-aigc detect-watermark`.")
    p.set_defaults(func=main)
    return p


def main(args):

    from keras_aigc.utils import save_grid, to_uint8

    if args.num < 1:
        raise ValueError(f"--num-samples must be a positive integer, got {args.num}.")
    from keras_aigc.cli.paths import load_model, resolve_model_path

    path = resolve_model_path(args.model)
    if args.sign:  # a bad credentials directory fails before the model loads
        from keras_aigc_runtime.provenance.credentials import Credentials

        args.sign = Credentials(args.sign)
    payload = _payload(args.watermark, path)  # a bad payload fails before the model loads
    model = load_model(path)
    kwargs = {}
    if args.labels is not None:
        try:
            values = [int(v) for v in args.labels.split(",") if v.strip()]
        except ValueError as e:
            raise ValueError(f"--labels must be comma-separated integers, got {args.labels!r}.") from e
        if not values:
            raise ValueError("--labels is empty.")
        kwargs["labels"] = np.resize(np.asarray(values, np.int32), args.num)
    images = model.generate(args.num, seed=args.seed, **kwargs)
    value_range = model.value_range
    run_dir = os.path.dirname(os.path.abspath(path))
    out = args.output or os.path.join(run_dir, "samples", f"sample_seed{args.seed}.png")
    save_grid(images, out, value_range=value_range)
    try:
        note = "" if payload is None else _watermark(out, payload)
        _stamp(out, model, path, args.seed, kwargs.get("labels"), args.num, args.sign)
    except BaseException:
        os.remove(out)  # no PNG without the provenance asked for
        raise
    print(f"wrote {args.num} samples to {out}" + (" (signed)" if args.sign else "") + note)
    if args.npy:
        np.save(args.npy, to_uint8(images, value_range))
        print(f"wrote uint8 images {images.shape} to {args.npy}")
    return 0


def _payload(text, model_path):
    if text is None:
        return None
    from keras_aigc_runtime.provenance import watermark

    if text == "model":
        from keras_aigc_runtime.manifest import sha256_file

        return watermark.model_id(None, sha256_file(model_path))
    try:
        return watermark.parse_payload(text)
    except ValueError as e:
        raise ValueError(f"--watermark: {e}") from e


def _watermark(png_path, payload):
    """Rewrites the PNG with the watermark (before any signing, which covers it)."""
    from PIL import Image

    from keras_aigc_runtime.provenance import watermark

    with Image.open(png_path) as im:
        pixels = np.asarray(im)
    marked, factor = watermark.mark(pixels, payload)
    tmp = f"{png_path}.tmp{os.getpid()}"
    Image.fromarray(marked).save(tmp, format="PNG")
    os.replace(tmp, png_path)
    upscaled = f", upscaled {factor}x to {marked.shape[1]}x{marked.shape[0]}" if factor > 1 \
        else ""
    return f" (watermark payload 0x{payload:08x}{upscaled})"


def _stamp(png_path, model, model_path, seed, labels, n, sign):
    """Rewrites the PNG with provenance: a signed C2PA manifest, or unsigned text chunks."""
    from keras_aigc import __version__
    from keras_aigc_runtime.manifest import sha256_file
    from keras_aigc_runtime.provenance import generation_claims, stamp_png

    if labels is None:
        labels = model.normalize_labels(None, n)  # the contract's default (None if unconditional)
    claims = generation_claims(model.name, sha256_file(model_path), seed,
                               None if labels is None else np.asarray(labels).tolist(),
                               sha256_of="model.keras", generator_name="keras-aigc",
                               generator_version=__version__)
    with open(png_path, "rb") as f:
        data = stamp_png(f.read(), claims, sign=sign)
    tmp = f"{png_path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, png_path)
