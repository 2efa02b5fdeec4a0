"""Streaming `records:` vs the in-memory loader: peak RSS across dataset sizes, and the
input pipeline's images/sec against ResNet-64 training images/sec.

    nice -n 10 python benchmarks/data_streaming.py --sizes 10000 50000 100000

Each measurement runs in a fresh process (peak RSS = `ru_maxrss` of that process): it
builds the dataset and iterates one full epoch of 64x64x3 images, batch 64. Records are
written with the real shard writer (the Spark job's output format) from random smooth
images, PNG-encoded. The in-memory loader is the same split read into numpy first
(`streaming=False`), which is what every non-records source does. `--repeat` adds a
row per size for the endless `repeat=True` stream (what `keras-aigc train` uses with a
backup), iterated for `info.steps_per_epoch` batches: its RSS must stay flat too.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(out, n):
    """`n` 64x64 RGB PNG records in shards of 2048, all in train."""
    from keras_aigc.data.prepare import images, job, writer

    if os.path.exists(os.path.join(out, "dataset.json")):
        return
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(n)
    per = 2048
    count = -(-n // per)
    infos = []
    from PIL import Image

    for k in range(count):
        recs = []
        for i in range(k * per, min(n, (k + 1) * per)):
            small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            px = np.asarray(Image.fromarray(small).resize((64, 64), Image.BILINEAR))
            recs.append({"id": str(i), "label": i % 10, "sha": images.pixel_hash(px),
                         "image": images.encode(px, "png"), "shape": px.shape})
        recs.sort(key=lambda r: r["sha"])
        infos.append(writer.write_shard(out, "train", k, count, recs))
    params = job.make_params(image_size=64)
    meta = job._metadata("bench", params, [str(i) for i in range(10)], (64, 64, 3), infos,
                         {}, {}, {"clusters": 0}, n)
    with open(os.path.join(out, "dataset.json"), "w") as f:
        json.dump(meta, f)


def measure(directory, streaming, model_steps, repeat=False):
    """Child process: one epoch through the loader; prints JSON."""
    import tensorflow as tf

    from keras_aigc import data

    ds, info = data.load(f"records:{directory}", batch_size=64, streaming=streaming,
                         shuffle=True, shuffle_buffer=10_000, drop_remainder=True,
                         repeat=repeat, with_info=True)
    start = time.perf_counter()
    n = 0
    for step, batch in enumerate(ds):
        if repeat and step == info.steps_per_epoch:
            break  # one epoch of the endless stream
        n += int(batch.shape[0])
    seconds = time.perf_counter() - start
    out = {"streaming": streaming, "repeat": repeat, "images": n,
           "pipeline_images_per_sec": n / seconds,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if model_steps:
        from keras_aigc.models import ResNetGAN

        gan = ResNetGAN(architecture="resnet64", seed=0)
        gan.compile()
        train = ds.repeat()
        gan.fit(train, epochs=1, steps_per_epoch=2, verbose=0)  # trace + warm up
        start = time.perf_counter()
        gan.fit(train, epochs=1, steps_per_epoch=model_steps, verbose=0)
        out["resnet64_train_images_per_sec"] = 64 * model_steps / (time.perf_counter() - start)
        del tf
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    p.add_argument("--workdir", default="/tmp/keras_aigc_stream_bench")
    p.add_argument("--model-steps", type=int, default=5)
    p.add_argument("--repeat", action="store_true",
                   help="Also measure the endless repeat=True stream at every size.")
    p.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return measure(args.child[0], args.child[1] == "1", int(args.child[2]),
                       repeat=args.child[3] == "1")
    rows = []
    for n in args.sizes:
        out = os.path.join(args.workdir, f"records_{n}")
        t = time.perf_counter()
        write(out, n)
        print(f"records for {n} images ready ({time.perf_counter() - t:.0f} s)", flush=True)
        modes = [(True, False), (False, False)] + ([(True, True)] if args.repeat else [])
        for streaming, repeat in modes:
            steps = (args.model_steps if (streaming and not repeat and n == args.sizes[0])
                     else 0)
            env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                       TF_CPP_MIN_LOG_LEVEL="2")
            res = subprocess.run([sys.executable, __file__, "--child", out,
                                  "1" if streaming else "0", str(steps),
                                  "1" if repeat else "0"], env=env,
                                 capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(res.stderr[-3000:])
            row = json.loads(res.stdout.strip().splitlines()[-1])
            row["dataset_images"] = n
            rows.append(row)
            print(json.dumps(row), flush=True)
    first = [r for r in rows if "resnet64_train_images_per_sec" in r]
    if first:
        r = first[0]
        print(f"pipeline / ResNet-64 training: "
              f"{r['pipeline_images_per_sec'] / r['resnet64_train_images_per_sec']:.1f}x")


if __name__ == "__main__":
    main()
