"""Provenance benchmarks: watermark robustness / false positives / PSNR per size, and the
cost of C2PA signing in `keras-aigc sample` (images/sec, signing on vs off).

    KERAS_AIGC_MNIST=path/to/mnist.npz nice -n 10 python benchmarks/provenance.py [--images 20]

Writes benchmarks/results/provenance.md (collected into RESULTS.md by hand or run_all).
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "export")]


def jpeg(a):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=75)
    return np.asarray(Image.open(buf))


def half(a):
    h, w = a.shape[:2]
    return np.asarray(Image.fromarray(a).resize((w // 2, h // 2), Image.BILINEAR)
                      .resize((w, h), Image.BILINEAR))


def crop(a):
    h, w = a.shape[:2]
    dh, dw = int(round(h * 0.05)), int(round(w * 0.05))
    return a[dh:h - dh, dw:w - dw]


def watermark_table(n_images, n_fp):
    from sklearn.datasets import load_digits

    from keras_aigc_runtime.provenance import watermark as wm

    with np.load(os.environ.get("KERAS_AIGC_MNIST", "../shared/data/mnist.npz")) as d:
        mnist = d["x_test"]
    digits = np.clip(np.rint(load_digits().images * 255 / 16), 0, 255).astype(np.uint8)
    sets = [("MNIST 28px x5 = 140px", mnist, 5), ("MNIST 28px x8 = 224px", mnist, 8),
            ("digits 8px x16 = 128px", digits, 16)]
    rows = []
    for name, data, f in sets:
        acc = {"clean": [], "jpeg_q75": [], "resize_0.5x_back": [], "crop_10pct": []}
        exact = {k: 0 for k in acc}
        psnrs = []
        for i in range(n_images):
            x = np.repeat(np.repeat(data[i], f, 0), f, 1)
            payload = int(np.random.default_rng(i).integers(0, 2**32))
            m = wm.embed(x, payload)
            psnrs.append(10 * np.log10(255**2 / np.mean((m.astype(float) - x) ** 2)))
            truth = wm.payload_bits(payload)
            for k, edit in (("clean", lambda a: a), ("jpeg_q75", jpeg),
                            ("resize_0.5x_back", half), ("crop_10pct", crop)):
                r = wm.extract(edit(m))
                exact[k] += r["detected"] and r["payload"] == payload
                if r["detected"]:
                    acc[k].append(float(np.mean(r["bits"] == truth)))
                else:  # best tile shift against the truth (an upper bound)
                    acc[k].append(max(float(np.mean((np.roll(r["votes"], (a, b), (0, 1))
                                                     .ravel() > 0.5) == truth))
                                      for a in range(8) for b in range(8)))
        fp = sum(wm.extract(np.repeat(np.repeat(data[n_images + j], f, 0), f, 1))["detected"]
                 for j in range(n_fp))
        rows.append((name, {k: (np.mean(v), exact[k]) for k, v in acc.items()},
                     float(np.mean(psnrs)), float(np.min(psnrs)), fp))
    return rows


def signing_cost(rounds, num):
    import keras

    import keras_aigc as ka
    from keras_aigc.cli.main import main
    from keras_aigc_runtime.provenance import init_test_credentials

    keras.utils.set_random_seed(0)
    tmp = tempfile.mkdtemp()
    gan = ka.models.DCGAN.from_preset("tf_tutorial", seed=0)
    gan.build()
    gan.save(os.path.join(tmp, "model.keras"))
    init_test_credentials(os.path.join(tmp, "creds"))
    times = {"off": [], "on": []}
    main(["sample", tmp, "--num", str(num), "--output", os.path.join(tmp, "w.png")])  # warm-up
    for _ in range(rounds):
        for mode in ("off", "on"):
            extra = ["--sign", os.path.join(tmp, "creds")] if mode == "on" else []
            t = time.perf_counter()
            main(["sample", tmp, "--num", str(num), "--output",
                  os.path.join(tmp, f"{mode}.png"), *extra])
            times[mode].append(num / (time.perf_counter() - t))
    return times


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--fp-images", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--num", type=int, default=64)
    args = p.parse_args()
    lines = ["## Provenance: watermark robustness and C2PA signing cost", "",
             f"Load average at start: {os.getloadavg()}. `nice -n 10 python "
             f"benchmarks/provenance.py --images {args.images} --fp-images {args.fp_images} "
             f"--rounds {args.rounds} --num {args.num}`.", "",
             "Watermark: 32-bit payload + CRC-32 (64 bits), scale 30. Bit accuracy = mean over "
             "images (for undetected images: the best tile shift against the truth, an upper "
             "bound); exact = payload recovered (CRC match).", "",
             "| size | edit | bit accuracy | exact | PSNR mean / min (dB) | false positives |",
             "|---|---|---:|---:|---:|---:|"]
    for name, acc, psnr_mean, psnr_min, fp in watermark_table(args.images, args.fp_images):
        for k, (a, e) in acc.items():
            lines.append(f"| {name} | {k} | {a:.3f} | {e}/{args.images} | "
                         f"{psnr_mean:.1f} / {psnr_min:.1f} | {fp}/{args.fp_images} |")
    times = signing_cost(args.rounds, args.num)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    lines += ["", f"`keras-aigc sample` of {args.num} images (DCGAN tf_tutorial, one PNG grid), "
              f"{args.rounds} alternating rounds, median images/sec:", "",
              "| C2PA signing | images/sec | ratio | rounds |", "|---|---:|---:|---|",
              f"| off (text chunks) | {off:.1f} | 1.000x | "
              f"{', '.join(f'{v:.1f}' for v in times['off'])} |",
              f"| on (--sign) | {on:.1f} | {on / off:.3f}x | "
              f"{', '.join(f'{v:.1f}' for v in times['on'])} |"]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(ROOT, "benchmarks", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "benchmarks", "results", "provenance.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
