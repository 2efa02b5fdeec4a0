"""Images/sec of one exported generator in every runtime, at batch 1 and 64.

    PYTHONPATH=. python benchmarks/export_speed.py [--preset tf_tutorial] [--seconds 1.5]

Exports the (untrained) DCGAN generator once to a bundle with SavedModel, ONNX and TFLite
(fp32, float16, int8; both a dynamic-batch file and fixed-batch files for 1 and 64), then
times each runtime on the same latents and prints images/sec and the ratio to the
SavedModel. The TFLite rows also vary what the export controls: dynamic vs fixed batch,
threads, and the XNNPACK delegate on/off, to show where TFLite's time goes.

The ONNX rows compare the bundle's file (ConvTranspose rewritten to Conv + DepthToSpace at
export, `keras_aigc.export.onnx.conv_transpose_as_conv`) run with the runtime's
SessionOptions preset against the plain tf2onnx graph, and the bundle's quantized ONNX
variants (`export_bundle(onnx_quantize=...)`: float16, dynamic_int8, static int8 QDQ)
against the float32 file, with the PSNR each reached in the export's parity check. Rows alternate round by round
(`--rounds`), each figure is the median, and the load average is printed. At batch 1 the
FLOP bound (generator FLOPs / the measured float32 matmul peak) is printed beside the
latencies. `--skip-tflite` keeps only the SavedModel/Keras/ONNX rows.

`--onnx-profile` explains the float32 ORT-vs-SavedModel gap: both run with one thread in
process CPU time, ORT's own profiler splits ORT's time by node, and each convolution's
achieved GFLOP/s is printed beside the SavedModel's whole-graph rate.
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


def matmul_peak_gflops(n=1024, seconds=1.0):
    """Best float32 GFLOP/s of an n x n numpy matmul (the BLAS every runtime competes with)."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    a @ a
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        a @ a
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def node_flops(onnx_path):
    """`(node, 2 x multiply-adds of one image)` for each Conv/ConvTranspose/MatMul/Gemm node."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(onnx_path))
    shapes = {v.name: [d.dim_value or 1 for d in v.type.tensor_type.shape.dim]
              for v in list(model.graph.value_info) + list(model.graph.output)
              + list(model.graph.input)}
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        w = inits.get(node.input[1]) if len(node.input) > 1 else None
        out = shapes.get(node.output[0])
        if w is None or out is None:
            continue
        if node.op_type == "Conv":  # out (1, Co, H, W), w (Co, Ci, kh, kw)
            yield node, 2 * int(np.prod(out[1:])) * int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":  # per input pixel: Ci x Co x k x k
            inp = shapes.get(node.input[0])
            if inp:
                yield node, 2 * int(np.prod(inp[2:])) * int(np.prod(w))
        elif node.op_type in ("MatMul", "Gemm"):
            yield node, 2 * int(np.prod(w))


def generator_flops(onnx_path):
    """2 x multiply-adds of one image through the Conv/ConvTranspose/MatMul/Gemm nodes."""
    return sum(f for _, f in node_flops(onnx_path))


def onnx_variants(args):
    """`--onnx-variants`: the bundle's ONNX files (float32 and each `onnx_quantize`
    variant) timed in process CPU time with one intra-op thread, so the ratios do not
    depend on other processes' load (ORT's idle threads spin, which a multi-threaded CPU
    time would count). TensorFlow is imported only when the files are not yet in
    `--work-dir`."""
    import onnxruntime as ort

    from keras_aigc_runtime.onnx_backend import session_options

    quants = ("none", "float16", "dynamic_int8", "int8")
    work = args.work_dir or tempfile.mkdtemp(prefix="export_speed-")
    os.makedirs(work, exist_ok=True)
    paths = {q: os.path.join(work, "model.onnx" if q == "none" else f"model_{q}.onnx")
             for q in quants}
    if not all(os.path.exists(p) for p in paths.values()):
        import keras

        from keras_aigc.export import onnx as onnx_lib
        from keras_aigc.export.export_utils import export_spec
        from keras_aigc.models import DCGAN

        keras.utils.set_random_seed(0)
        model = DCGAN.from_preset(args.preset)
        model.build()
        spec = export_spec(model)
        sig = spec.signature("generate")
        onnx_lib.export_onnx(sig, paths["none"])
        rng = np.random.default_rng(0)
        for q in quants[1:]:
            onnx_lib.quantize(paths["none"], paths[q], q,
                              onnx_lib.calibration_inputs(spec, sig, rng) if q == "int8"
                              else None, work_dir=work)
    sessions = {q: ort.InferenceSession(p, session_options(1), providers=["CPUExecutionProvider"])
                for q, p in paths.items()}
    latent = sessions["none"].get_inputs()[0].shape[1]
    rng = np.random.default_rng(1)
    print(f"ONNX variants, 1 intra-op thread, process CPU time; load average "
          f"{os.getloadavg()[0]:.1f}")
    out = {}
    for b in args.batches:
        z = rng.standard_normal((b, latent)).astype(np.float32)
        ref = sessions["none"].run(None, {"z": z})[0]
        cpu = {q: [] for q in quants}
        for _ in range(args.rounds):
            for q, s in sessions.items():
                cpu[q].append(cpu_time(lambda s=s, z=z: s.run(None, {"z": z}), args.seconds))
        print(f"\nbatch {b} (CPU ms per call, images per CPU-second, ratio to float32 "
              f"ORT, max|diff| and PSNR against float32 ORT on these latents)")
        base = float(np.median(cpu["none"]))
        for q, s in sessions.items():
            sec = float(np.median(cpu[q]))
            got = s.run(None, {"z": z})[0]
            mse = float(np.mean((got.astype(np.float64) - ref) ** 2))
            psnr = 10 * np.log10(4.0 / mse) if mse else float("inf")  # tanh range: peak 2
            print(f"  {q:<13} {sec * 1e3:>9.2f} ms  {b / sec:>9.1f}  {base / sec:>6.2f}x  "
                  f"{np.max(np.abs(got - ref)):.2e}  {psnr:.1f} dB  (rounds "
                  f"{', '.join(f'{c * 1e3:.1f}' for c in cpu[q])} ms)")
            out.setdefault(b, {})[q] = {"cpu_ms": sec * 1e3, "ratio_to_fp32": base / sec,
                                        "psnr_db": psnr}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": "onnx_variants", "load_average": os.getloadavg()[0],
                       "results": out}, f, indent=2)
    return 0


def onnx_profile(args):
    """`--onnx-profile`: where ORT's float32 time goes, against the SavedModel, one thread."""
    import collections

    import keras
    import onnxruntime as ort
    import tensorflow as tf

    from keras_aigc.export import onnx as onnx_lib
    from keras_aigc.export.export_utils import export_spec
    from keras_aigc.models import DCGAN
    from keras_aigc_runtime.onnx_backend import session_options

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    work = args.work_dir or tempfile.mkdtemp(prefix="export_speed-")
    os.makedirs(work, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = DCGAN.from_preset(args.preset)
    model.build()
    path, sm_dir = os.path.join(work, "profile.onnx"), os.path.join(work, "profile_sm")
    onnx_lib.export_onnx(export_spec(model).signature("generate"), path)
    model.inference_generator.export(sm_dir, format="tf_saved_model", verbose=False)
    sm = tf.saved_model.load(sm_dir).signatures["serving_default"]
    b = max(args.batches)
    z = np.random.default_rng(1).standard_normal((b, model.latent_dim)).astype(np.float32)
    zt = tf.constant(z)
    opts = session_options(1)
    opts.enable_profiling = True
    opts.profile_file_prefix = os.path.join(work, "ort_profile")
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    sm_ms, ort_ms = [], []
    for _ in range(args.rounds):
        sm_ms.append(cpu_time(lambda: sm(zt), args.seconds) * 1e3)
        ort_ms.append(cpu_time(lambda: sess.run(None, {"z": z}), args.seconds) * 1e3)
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    per_node, calls = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["args"]["op_name"], e["name"][:-len("_kernel_time")])] += e["dur"]
            calls[e["name"]] += 1
    total = sum(per_node.values())
    plain = os.path.join(work, "profile_plain.onnx")  # true FLOPs: the rewrite adds zero taps
    onnx_lib.export_onnx(export_spec(model).signature("generate"), plain, optimize=False)
    flops = generator_flops(plain) * b
    sm_med, ort_med = float(np.median(sm_ms)), float(np.median(ort_ms))
    print(f"batch {b}, one thread, CPU ms per call (median of {args.rounds}): SavedModel "
          f"{sm_med:.1f} ({flops / sm_med / 1e6:.0f} GFLOP/s over the graph), ORT "
          f"{ort_med:.1f} ({flops / ort_med / 1e6:.0f} GFLOP/s); ORT/SavedModel speed "
          f"{sm_med / ort_med:.2f}x; load average {os.getloadavg()[0]:.1f}")
    layer_flops, layer_time = _layer_flops(plain, b), collections.Counter()
    for (_op, name), dur in per_node.items():
        layer_time[_layer(name)] += dur
    print("ORT time by layer (share of ORT kernel time, ms of the median call, and the "
          "layer's true GFLOP/s):")
    for layer, dur in layer_time.most_common():
        ms = dur / total * ort_med
        rate = (f"{layer_flops[layer] / ms / 1e6:7.0f} GFLOP/s" if layer_flops.get(layer)
                else "")
        print(f"  {layer:<26} {100 * dur / total:5.1f}%  {ms:7.2f} ms  {rate}")
    print("ORT nodes (share of ORT kernel time):")
    for (op, name), dur in per_node.most_common(10):
        print(f"  {op:<14} {name[:60]:<60} {100 * dur / total:5.1f}%")
    return 0


def _layer(node_name):
    """Keras layer of an ONNX/ORT node name: 'generator_1/up0_act_1/LeakyRelu:0_nchwc' ->
    'up0' (activations and batch norms count with their convolution)."""
    import re

    parts = node_name.split("/")
    if len(parts) < 2:
        return "(layout reorders)"
    return re.sub(r"(_act|_bn)$", "", re.sub(r"_\d+$", "", parts[1]))


def _layer_flops(path, batch):
    """FLOPs at `batch` of each layer's Conv/ConvTranspose/MatMul/Gemm nodes."""
    out = {}
    for node, f in node_flops(path):
        key = _layer(node.name)
        out[key] = out.get(key, 0) + f * batch
    return out


def cpu_time(fn, seconds):
    """Process CPU seconds per call of `fn` (one warm-up call; at least 3 timed calls and
    `seconds` of CPU)."""
    fn()
    n, c0 = 0, time.process_time()
    while True:
        fn()
        n += 1
        used = time.process_time() - c0
        if used >= seconds and n >= 3:
            return used / n


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
    p.add_argument("--rounds", type=int, default=3, help="Alternating rounds per row.")
    p.add_argument("--skip-tflite", action="store_true", help="Only SavedModel, Keras, ONNX.")
    p.add_argument("--onnx-variants", action="store_true",
                   help="Only the ONNX float32/float16/dynamic_int8/int8 files, in CPU time "
                        "with one thread (see onnx_variants).")
    p.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    p.add_argument("--work-dir", default=None,
                   help="Keep the bundles here and reuse them on the next run (default: a "
                        "temporary directory, removed at the end).")
    p.add_argument("--onnx-profile", action="store_true",
                   help="Only the float32 ORT-vs-SavedModel comparison, one thread, with "
                        "ORT's per-node profile (see onnx_profile).")
    args = p.parse_args(argv)
    if args.onnx_profile:
        return onnx_profile(args)
    if args.onnx_variants:
        return onnx_variants(args)

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
        onnx_quants = ("float16", "dynamic_int8", "int8")
        if (not os.path.isdir(dyn) or not os.path.exists(os.path.join(dyn, "model_int8.onnx"))
                or (not args.skip_tflite and not os.path.isdir(fixed))):
            if args.skip_tflite:
                export_bundle(model, dyn, formats=("saved_model", "onnx"), overwrite=True,
                              onnx_quantize=onnx_quants)
            else:
                export_bundle(model, dyn, formats=("saved_model", "tflite", "onnx"),
                              quantize=("float16", "int8"), overwrite=True,
                              onnx_quantize=onnx_quants)
                export_bundle(model, fixed, formats=("tflite",), quantize=("float16", "int8"),
                              batch_sizes=tuple(args.batches), overwrite=True)
            print(f"export (verified): {time.perf_counter() - t0:.1f} s")
        plain = os.path.join(tmp, "tf2onnx_plain.onnx")
        if not os.path.exists(plain):
            from keras_aigc.export import onnx as onnx_lib
            from keras_aigc.export.export_utils import export_spec

            onnx_lib.export_onnx(export_spec(model).signature("generate"), plain,
                                 optimize=False)
        from keras_aigc_runtime.onnx_backend import session_options

        peak = matmul_peak_gflops()
        flops = generator_flops(plain)
        print(f"generator: {flops / 1e6:.1f} MFLOP per image; float32 matmul peak "
              f"{peak:.1f} GFLOP/s; FLOP bound at batch 1: {flops / peak / 1e6:.3f} ms "
              f"(load average {os.getloadavg()[0]:.1f})")

        rng = np.random.default_rng(0)
        sm = tf.saved_model.load(os.path.join(dyn, "saved_model")).signatures["generate"]
        call = tf.function(lambda z: gen(z, training=False))
        sess = ort.InferenceSession(os.path.join(dyn, "model.onnx"),
                                    session_options(args.threads),
                                    providers=["CPUExecutionProvider"])
        sess_plain = ort.InferenceSession(plain, session_options(args.threads),
                                          providers=["CPUExecutionProvider"])
        sess_q = {q: ort.InferenceSession(os.path.join(dyn, f"model_{q}.onnx"),
                                          session_options(args.threads),
                                          providers=["CPUExecutionProvider"])
                  for q in onnx_quants}
        with open(os.path.join(dyn, "manifest.json")) as f:
            parity = {e["path"]: e["parity"] for e in json.load(f)["files"]}
        for q in onnx_quants:
            recs = parity[f"model_{q}.onnx"]
            psnrs = [r["psnr_db"] for r in recs if r["psnr_db"] is not None]
            print(f"ONNX {q}: export parity max|err| "
                  f"{max(r['max_abs_error'] for r in recs):.2e}, min PSNR "
                  f"{min(psnrs) if psnrs else float('inf'):.1f} dB")
        results = {}
        for b in args.batches:
            z = rng.standard_normal((b, model.latent_dim)).astype(np.float32)
            zt = tf.constant(z)
            rows = {
                "Keras call (eager)": lambda zt=zt: gen(zt, training=False),
                "Keras call (tf.function)": lambda zt=zt: call(zt),
                "SavedModel": lambda zt=zt: sm(z=zt),
                "ONNX Runtime (bundle file, Conv rewrite)": lambda z=z: sess.run(None, {"z": z}),
                "ONNX Runtime (tf2onnx graph, ConvTranspose)":
                    lambda z=z: sess_plain.run(None, {"z": z}),
                **{f"ONNX Runtime {q} (bundle file model_{q}.onnx)":
                   (lambda z=z, s=s: s.run(None, {"z": z})) for q, s in sess_q.items()},
            }
            if not args.skip_tflite:
                rows.update(tflite_rows(dyn, fixed, z, b, args.threads))
            times = {name: [] for name in rows}
            for _ in range(args.rounds):  # alternate the rows: load drift hits all alike
                for name, fn in rows.items():
                    times[name].append(timeit(fn, args.seconds))
            res = {}
            for name, v in times.items():
                sec = float(np.median(v))
                res[name] = {"images_per_sec": b / sec, "latency_ms": sec * 1e3}
            ref = res["SavedModel"]["images_per_sec"]
            ort_ref = res["ONNX Runtime (bundle file, Conv rewrite)"]["images_per_sec"]
            print(f"\nbatch {b} (images/sec, ratio to SavedModel, ratio to ORT float32, "
                  f"latency per call; load average {os.getloadavg()[0]:.1f})")
            for name, r in res.items():
                print(f"  {name:<44} {r['images_per_sec']:>10.1f}  "
                      f"{r['images_per_sec'] / ref:>6.2f}x  "
                      f"{r['images_per_sec'] / ort_ref:>6.2f}x  {r['latency_ms']:>8.3f} ms")
            if b == 1:
                best = min(r["latency_ms"] for r in res.values())
                print(f"  FLOP bound {flops / peak / 1e6:.3f} ms; best latency {best:.3f} ms "
                      f"= {best / (flops / peak / 1e6):.2f}x the bound")
            results[b] = res
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"preset": args.preset, "threads": args.threads,
                           "flops_per_image": flops, "matmul_peak_gflops": peak,
                           "load_average": os.getloadavg()[0], "results": results}, f,
                          indent=2)
    finally:
        if not args.work_dir:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def tflite_rows(dyn, fixed, z, b, threads):
    """The TFLite rows: each quantization dynamic and fixed-batch, threads, XNNPACK off."""
    rows = {}
    for quant, suffix in (("fp32", ""), ("fp16", "_float16"), ("int8", "_int8")):
        rows[f"TFLite {quant} dynamic, {threads} thr"] = tflite_fn(
            os.path.join(dyn, f"model{suffix}.tflite"), "generate", z, threads)
        rows[f"TFLite {quant} fixed b{b}, {threads} thr"] = tflite_fn(
            os.path.join(fixed, f"model{suffix}_b{b}.tflite"), f"generate_b{b}", z, threads)
    rows["TFLite fp32 dynamic, 1 thr"] = tflite_fn(
        os.path.join(dyn, "model.tflite"), "generate", z, 1)
    rows["TFLite fp32 fixed, 1 thr"] = tflite_fn(
        os.path.join(fixed, f"model_b{b}.tflite"), f"generate_b{b}", z, 1)
    rows[f"TFLite fp32 fixed, {threads} thr, no XNNPACK"] = tflite_fn(
        os.path.join(fixed, f"model_b{b}.tflite"), f"generate_b{b}", z, threads,
        xnnpack=False)
    return rows


if __name__ == "__main__":
    sys.exit(main())
