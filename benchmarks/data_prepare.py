"""`keras-aigc prepare` throughput at local[1] vs local[2], and the driver's peak RSS.

    nice -n 10 python benchmarks/data_prepare.py --num-images 100000 --workdir /tmp/prep

Generates a folder of JPEGs (64-256 px, 10 class folders, 2% exact copies and 2%
recompressed near duplicates), then runs the Spark job at each master and prints
images/sec, the peak RSS of the driver (the Python process that calls `prepare`, which
only collects metadata) and of the Spark JVM (in local mode it also hosts the executors).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import psutil


def generate(folder, n, seed=0):
    from PIL import Image

    if os.path.exists(os.path.join(folder, "DONE")) and \
            open(os.path.join(folder, "DONE")).read() == str(n):
        return
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(seed)
    n_base = int(n * 0.96)
    for c in range(10):
        os.makedirs(os.path.join(folder, f"class{c}"), exist_ok=True)
    paths = []
    for i in range(n_base):
        side = int(rng.integers(64, 257))
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize((side, side), Image.BICUBIC)
        path = os.path.join(folder, f"class{i % 10}", f"img{i:07d}.jpg")
        im.save(path, quality=90)
        paths.append(path)
    extra = n - n_base
    for j in range(extra):
        src = paths[int(rng.integers(0, n_base))]
        dst = os.path.join(os.path.dirname(src), f"dup{j:07d}.jpg")
        if j % 2:
            shutil.copy(src, dst)
        else:
            Image.open(src).save(dst, quality=70)
    with open(os.path.join(folder, "DONE"), "w") as f:
        f.write(str(n))


def peak_rss(proc, stop):
    """Peak RSS (bytes) of a process and, separately, its largest descendant (the JVM)."""
    top, child = 0, 0
    while proc.poll() is None:
        try:
            p = psutil.Process(proc.pid)
            top = max(top, p.memory_info().rss)
            for c in p.children(recursive=True):
                child = max(child, c.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.5)
    return top, child


def run(folder, out, master, image_size):
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "keras_aigc.cli.main", "prepare", f"dir:{folder}", out,
           "--image-size", str(image_size), "--master", master,
           "--conf", "spark.ui.showConsoleProgress=false", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.memory=2g"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    top, jvm = peak_rss(proc, None)
    out_text = proc.stdout.read().decode()
    seconds = time.perf_counter() - start
    if proc.wait() != 0:
        raise SystemExit(f"prepare failed at {master}")
    meta = json.load(open(os.path.join(out, "dataset.json")))
    return seconds, top, jvm, meta, out_text


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num-images", type=int, default=100_000)
    p.add_argument("--workdir", default="/tmp/keras_aigc_prepare_bench")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    args = p.parse_args()
    folder = os.path.join(args.workdir, f"jpegs_{args.num_images}")
    t = time.perf_counter()
    generate(folder, args.num_images)
    print(f"generated {args.num_images} JPEGs in {time.perf_counter() - t:.0f} s "
          f"({folder})", flush=True)
    rows = []
    for master in args.masters:
        seconds, top, jvm, meta, _ = run(folder, os.path.join(args.workdir, "out"), master,
                                         args.image_size)
        kept = sum(v["num_examples"] for v in meta["splits"].values())
        row = {"master": master, "images": args.num_images, "seconds": round(seconds, 1),
               "images_per_sec": round(args.num_images / seconds, 1),
               "driver_peak_rss_mb": round(top / 2**20), "jvm_peak_rss_mb": round(jvm / 2**20),
               "kept": kept, "dropped": {k: v for k, v in meta["dropped"].items() if v}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if len(rows) >= 2:
        print(f"speed-up {rows[1]['master']} / {rows[0]['master']}: "
              f"{rows[1]['images_per_sec'] / rows[0]['images_per_sec']:.2f}x")


if __name__ == "__main__":
    main()
