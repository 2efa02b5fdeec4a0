"""`keras-aigc prepare` throughput at local[1] vs local[2], and the driver's peak RSS.

    nice -n 10 python benchmarks/data_prepare.py --num-images 100000 --workdir /tmp/prep

Generates a folder of JPEGs (64-256 px, 10 class folders, 2% exact copies and 2%
recompressed near duplicates), then runs the Spark job at each master and prints
images/sec, the CPU seconds of the whole process tree (driver, JVM and Python workers:
on a shared machine this is the figure that does not depend on how much CPU the job was
given), the peak RSS of the driver (the Python process that calls `prepare`, which only
collects metadata), of the Spark JVM (in local mode it also hosts the executors) and of
the largest Python worker.

`--baseline-tree DIR` also runs the same job from another checkout (e.g. `git archive
<commit> | tar -x -C DIR`) in the same invocation, alternating with this one, and prints
the speed ratio:

    nice -n 10 python benchmarks/data_prepare.py --num-images 300 --masters 'local[1]' \
        --baseline-tree /tmp/prepare_before
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


def watch(proc):
    """Samples the process tree until `proc` exits.

    Returns peak RSS (bytes) of the driver, of the largest non-Python descendant (the
    JVM) and of the largest Python worker, and the CPU seconds (user + system) of the
    whole tree (each process's last sample; a process that lives < 0.2 s is missed).
    """
    top, jvm, worker = 0, 0, 0
    cpu = {}
    while proc.poll() is None:
        try:
            p = psutil.Process(proc.pid)
            top = max(top, p.memory_info().rss)
            t = p.cpu_times()
            cpu[p.pid] = t.user + t.system
            for c in p.children(recursive=True):
                try:
                    rss = c.memory_info().rss
                    t = c.cpu_times()
                    cpu[(c.pid, c.create_time())] = t.user + t.system
                    if "python" in c.name():
                        worker = max(worker, rss)
                    else:
                        jvm = max(jvm, rss)
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        time.sleep(0.2)
    return top, jvm, worker, sum(cpu.values())


def run(folder, out, master, image_size, tree=None):
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([tree, os.path.join(tree, "export")])
    cmd = [sys.executable, "-m", "keras_aigc.cli.main", "prepare", f"dir:{folder}", out,
           "--image-size", str(image_size), "--master", master,
           "--conf", "spark.ui.showConsoleProgress=false", "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.memory=2g"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    top, jvm, worker, cpu = watch(proc)
    out_text = proc.stdout.read().decode()
    seconds = time.perf_counter() - start
    if proc.wait() != 0:
        raise SystemExit(f"prepare failed at {master} (tree {tree or 'this one'})")
    meta = json.load(open(os.path.join(out, "dataset.json")))
    return {"seconds": seconds, "driver": top, "jvm": jvm, "worker": worker, "cpu": cpu,
            "meta": meta, "stdout": out_text}


def row_of(master, n, r, tree):
    meta = r["meta"]
    return {"code": tree or "this tree", "master": master, "images": n,
            "seconds": round(r["seconds"], 1), "images_per_sec": round(n / r["seconds"], 2),
            "cpu_seconds": round(r["cpu"], 1), "images_per_cpu_sec": round(n / r["cpu"], 2),
            "driver_peak_rss_mb": round(r["driver"] / 2**20),
            "jvm_peak_rss_mb": round(r["jvm"] / 2**20),
            "worker_peak_rss_mb": round(r["worker"] / 2**20),
            "kept": sum(v["num_examples"] for v in meta["splits"].values()),
            "splits": {k: v["num_examples"] for k, v in meta["splits"].items()},
            "dropped": {k: v for k, v in meta["dropped"].items() if v},
            "load_average": [round(x, 1) for x in os.getloadavg()]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--num-images", type=int, default=100_000)
    p.add_argument("--workdir", default="/tmp/keras_aigc_prepare_bench")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--masters", nargs="+", default=["local[1]", "local[2]"])
    p.add_argument("--baseline-tree", default=None,
                   help="Another checkout to run the same job from, for a before/after ratio.")
    args = p.parse_args()
    folder = os.path.join(args.workdir, f"jpegs_{args.num_images}")
    t = time.perf_counter()
    generate(folder, args.num_images)
    print(f"generated {args.num_images} JPEGs in {time.perf_counter() - t:.0f} s "
          f"({folder})", flush=True)
    rows = []
    trees = [args.baseline_tree, None] if args.baseline_tree else [None]
    for master in args.masters:
        for tree in trees:
            r = run(folder, os.path.join(args.workdir, "out"), master, args.image_size, tree)
            rows.append(row_of(master, args.num_images, r, tree))
            print(json.dumps(rows[-1]), flush=True)
        if args.baseline_tree:
            before, after = rows[-2], rows[-1]
            if (before["splits"], before["dropped"]) != (after["splits"], after["dropped"]):
                raise SystemExit("the two trees disagree on the counts: "
                                 f"{before['splits']} {before['dropped']} vs "
                                 f"{after['splits']} {after['dropped']}")
            print(f"{master}: this tree / baseline = "
                  f"{after['images_per_sec'] / before['images_per_sec']:.2f}x wall, "
                  f"{after['images_per_cpu_sec'] / before['images_per_cpu_sec']:.2f}x per "
                  "CPU second (same counts)", flush=True)
    mine = [r for r in rows if r["code"] == "this tree"]
    if len(mine) >= 2:
        print(f"speed-up {mine[1]['master']} / {mine[0]['master']}: "
              f"{mine[1]['images_per_sec'] / mine[0]['images_per_sec']:.2f}x")


if __name__ == "__main__":
    main()
