"""Parity of every exported variant for a briefly trained generator (digits, 32x32).

    PYTHONPATH=. python benchmarks/export_quality.py [--epochs 15]

An untrained generator outputs near-constant images, which makes int8 PSNR look better
than it is; this trains a small DCGAN on the bundled `digits` data first, exports it with
every TFLite variant and ONNX, and prints the parity the manifest records.
"""

import argparse
import shutil
import sys
import tempfile


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    args = p.parse_args(argv)
    import keras

    import keras_aigc as ka

    keras.utils.set_random_seed(0)
    ds, info = ka.data.load("digits", batch_size=64, with_info=True)
    gan = ka.models.DCGAN(image_shape=info.image_shape, latent_dim=16, g_filters=(32, 16, 8),
                          d_filters=(16, 32), kernel_size=3, seed=0)
    gan.compile()
    gan.fit(ds, epochs=args.epochs, verbose=0)
    x = gan.generate(256, seed=1)
    print(f"generator output std over 256 samples: {x.std():.3f} (range {x.min():.2f}.."
          f"{x.max():.2f})")
    tmp = tempfile.mkdtemp(prefix="export_quality-")
    try:
        manifest = ka.export.export_bundle(gan, f"{tmp}/bundle", formats=("tflite", "onnx"),
                                           quantize=("float16", "dynamic_int8", "int8"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'file':<28} {'quant':<13} {'batch':>5} {'max|err|':>10} {'PSNR dB':>8}")
    for f in manifest["files"]:
        for r in f["parity"]:
            print(f"{f['path']:<28} {f['quantization']:<13} {r['batch_size']:>5} "
                  f"{r['max_abs_error']:>10.2e} {r['psnr_db'] or float('inf'):>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
