"""Images/sec of one exported generator in every runtime, at batch 1 and 64.

    PYTHONPATH=. python benchmarks/export_speed.py [--preset tf_tutorial] [--seconds 1.5]

Exports the (untrained) DCGAN generator once to a bundle with SavedModel, ONNX and TFLite
(fp32, float16, int8; both a dynamic-batch file and fixed-batch files for 1 and 64), then
times each runtime on the same latents and prints images/sec and the ratio to the
SavedModel. The TFLite rows also vary what the export controls: dynamic vs fixed batch,
threads, and the XNNPACK delegate on/off, to show where TFLite's time goes.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np


def timeit(fn, seconds):
    fn()  # warm-up (allocations, delegate planning)
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            return elapsed / n


def tflite_fn(path, key, z, threads, xnnpack=True):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"num_threads": threads}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_path=path, **kwargs)
    del key  # each file holds one signature: use the interpreter's own tensors
    (d,) = interp.get_input_details()
    x = z
    if d["dtype"] == np.int8:
        scale, zp = d["quantization"]
        x = np.clip(np.round(z / scale) + zp, -128, 127).astype(np.int8)
    if tuple(d["shape_signature"])[0] == -1:
        interp.resize_tensor_input(d["index"], x.shape)
    interp.allocate_tensors()
    # Bypass the signature runner's Python overhead: set, invoke, get.
    inp = d["index"]
    out = interp.get_output_details()[0]["index"]

    def run():
        interp.set_tensor(inp, x)
        interp.invoke()
        return interp.get_tensor(out)

    return run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="tf_tutorial")
    p.add_argument("--seconds", type=float, default=1.5, help="Time per measurement.")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    p.add_argument("--work-dir", default=None,
                   help="Keep the bundles here and reuse them on the next run (default: a "
                        "temporary directory, removed at the end).")
    args = p.parse_args(argv)

    import keras
    import onnxruntime as ort
    import tensorflow as tf

    from keras_aigc.export import export_bundle
    from keras_aigc.models import DCGAN

    keras.utils.set_random_seed(0)  # the same weights when bundles are reused (--work-dir)
    model = DCGAN.from_preset(args.preset)
    model.build()
    gen = model.inference_generator
    tmp = args.work_dir or tempfile.mkdtemp(prefix="export_speed-")
    os.makedirs(tmp, exist_ok=True)
    try:
        t0 = time.perf_counter()
        dyn = os.path.join(tmp, "dynamic")
        fixed = os.path.join(tmp, "fixed")
        if not os.path.isdir(dyn) or not os.path.isdir(fixed):
            export_bundle(model, dyn, formats=("saved_model", "tflite", "onnx"),
                          quantize=("float16", "int8"), overwrite=True)
            export_bundle(model, fixed, formats=("tflite",), quantize=("float16", "int8"),
                          batch_sizes=tuple(args.batches), overwrite=True)
            print(f"export (two bundles, verified): {time.perf_counter() - t0:.1f} s")

        rng = np.random.default_rng(0)
        sm = tf.saved_model.load(os.path.join(dyn, "saved_model")).signatures["generate"]
        call = tf.function(lambda z: gen(z, training=False))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(os.path.join(dyn, "model.onnx"), opts,
                                    providers=["CPUExecutionProvider"])
        results = {}
        for b in args.batches:
            z = rng.standard_normal((b, model.latent_dim)).astype(np.float32)
            zt = tf.constant(z)
            rows = {
                "Keras call (eager)": lambda zt=zt: gen(zt, training=False),
                "Keras call (tf.function)": lambda zt=zt: call(zt),
                "SavedModel": lambda zt=zt: sm(z=zt),
                "ONNX Runtime": lambda z=z: sess.run(None, {"z": z}),
            }
            for quant, suffix in (("fp32", ""), ("fp16", "_float16"), ("int8", "_int8")):
                rows[f"TFLite {quant} dynamic, {args.threads} thr"] = tflite_fn(
                    os.path.join(dyn, f"model{suffix}.tflite"), "generate", z, args.threads)
                rows[f"TFLite {quant} fixed b{b}, {args.threads} thr"] = tflite_fn(
                    os.path.join(fixed, f"model{suffix}_b{b}.tflite"), f"generate_b{b}", z,
                    args.threads)
            rows["TFLite fp32 dynamic, 1 thr"] = tflite_fn(
                os.path.join(dyn, "model.tflite"), "generate", z, 1)
            rows["TFLite fp32 fixed, 1 thr"] = tflite_fn(
                os.path.join(fixed, f"model_b{b}.tflite"), f"generate_b{b}", z, 1)
            rows[f"TFLite fp32 fixed, {args.threads} thr, no XNNPACK"] = tflite_fn(
                os.path.join(fixed, f"model_b{b}.tflite"), f"generate_b{b}", z, args.threads,
                xnnpack=False)
            res = {}
            for name, fn in rows.items():
                sec = timeit(fn, args.seconds)
                res[name] = {"images_per_sec": b / sec, "latency_ms": sec * 1e3}
            ref = res["SavedModel"]["images_per_sec"]
            print(f"\nbatch {b} (images/sec, ratio to SavedModel, latency per call)")
            for name, r in res.items():
                print(f"  {name:<38} {r['images_per_sec']:>10.1f}  {r['images_per_sec'] / ref:>6.2f}x"
                      f"  {r['latency_ms']:>8.3f} ms")
            results[b] = res
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"preset": args.preset, "threads": args.threads, "results": results},
                          f, indent=2)
    finally:
        if not args.work_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
