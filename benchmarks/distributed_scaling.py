"""DCGAN (TF-tutorial preset) throughput via `fit` under three strategies on this machine.

    python benchmarks/distributed_scaling.py [--steps 6] [--batch 128]

Runs, each in fresh processes (strategies must be made before TF starts):

- `default`: one process, TF's default strategy;
- `mirrored`: one process, MirroredStrategy over two logical CPU devices;
- `multi_worker`: two processes on 127.0.0.1, MultiWorkerMirroredStrategy.

Same global batch and model everywhere. Epoch 1 (tracing) is warm-up; epoch 2 is timed.
Prints images/sec and step time, each as a ratio to `default`, the measured time of one
all-reduce of all G+D gradients between the two workers (the communication a step adds),
and a paper model of scaling to N GPUs. On a 2-core machine no strategy can beat
`default` by much: `default` already uses both cores through intra-op threads.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MNIST = os.environ.get("KERAS_AIGC_MNIST", os.path.join(REPO, "..", "shared", "data",
                                                        "mnist.npz"))
if not os.path.exists(MNIST):
    MNIST = "/work/shared/data/mnist.npz"


def task(args):
    """One process of one mode; writes a JSON result."""
    mode, out = args.task_mode, args.out
    if mode == "mirrored":
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from keras_aigc import distribute

    spec = {"default": "default", "mirrored": "mirrored:/cpu:0,/cpu:1",
            "multi_worker": "multi_worker"}[mode]
    strategy = distribute.get_strategy(spec, timeout=120)
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_aigc as ka

    keras.utils.set_random_seed(0)
    if os.path.exists(MNIST):
        ds = ka.data.load(f"npz:{MNIST}", batch_size=args.batch, drop_remainder=True)
    else:  # throughput does not depend on pixel values
        x = np.random.default_rng(0).uniform(-1, 1, (args.batch * 8, 28, 28, 1))
        ds = tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(
            args.batch, drop_remainder=True)
    ds = ds.repeat()
    with strategy.scope():
        gan = ka.models.DCGAN.from_preset("tf_tutorial", seed=0)
        gan.compile()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    gan.fit(ds, epochs=2, steps_per_epoch=args.steps, verbose=0, callbacks=[Timer()])
    n_params = sum(int(np.prod(v.shape)) for v in gan.generator.trainable_variables
                   + gan.discriminator.trainable_variables)
    result = {"mode": mode, "replicas": strategy.num_replicas_in_sync,
              "epoch_seconds": times[1], "steps": args.steps, "batch": args.batch,
              "params": n_params}
    if mode == "multi_worker":
        # One all-reduce of a G+D-gradient-sized float32 tensor: what a step communicates.
        grads = tf.ones([n_params], tf.float32)

        @tf.function
        def allreduce():
            return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
                "SUM", grads))

        allreduce()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            r = allreduce()
        float(strategy.experimental_local_results(r)[0][0])
        result["allreduce_seconds"] = (time.perf_counter() - t0) / args.steps
    if distribute.is_chief(strategy):
        with open(out, "w") as f:
            json.dump(result, f)


def _ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_mode(mode, args, workdir):
    out = os.path.join(workdir, f"{mode}.json")
    n = 2 if mode == "multi_worker" else 1
    ports = _ports(n)
    procs = []
    try:
        for i in range(n):
            env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2",
                       CUDA_VISIBLE_DEVICES="-1")
            env.pop("TF_CONFIG", None)
            if n > 1:
                env["TF_CONFIG"] = json.dumps({
                    "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                    "task": {"type": "worker", "index": i}})
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--task-mode", mode, "--out", out,
                 "--steps", str(args.steps), "--batch", str(args.batch)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True))
        for p in procs:
            _, err = p.communicate(timeout=args.timeout)
            if p.returncode:
                raise RuntimeError(f"{mode} task failed:\n{err.decode()[-3000:]}")
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait(timeout=30)
    with open(out) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--gpu-step-ms", type=float, default=20.0,
                        help="assumed per-step compute on one GPU for the paper model")
    parser.add_argument("--modes", default="default,mirrored,multi_worker")
    parser.add_argument("--task-mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.task_mode:
        return task(args)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for mode in args.modes.split(","):
            results[mode] = run_mode(mode, args, workdir)
    ref = results.get("default") or next(iter(results.values()))
    ref_step = ref["epoch_seconds"] / ref["steps"]
    print(f"DCGAN tf_tutorial, global batch {args.batch}, {args.steps} timed steps, "
          f"{os.cpu_count()} CPU cores\n")
    print(f"{'mode':<14}{'replicas':>9}{'step s':>9}{'img/s':>9}{'vs default':>12}")
    for mode, r in results.items():
        step = r["epoch_seconds"] / r["steps"]
        print(f"{mode:<14}{r['replicas']:>9}{step:>9.3f}{r['batch'] / step:>9.1f}"
              f"{ref_step / step:>11.2f}x")
    n_params = ref["params"]
    grad_bytes = 4 * n_params
    print(f"\nG+D trainable parameters: {n_params:,} -> {grad_bytes / 2**20:.1f} MiB of "
          "float32 gradients all-reduced per step (D's and G's, one each with d_steps=1)")
    if "multi_worker" in results and "allreduce_seconds" in results["multi_worker"]:
        ar = results["multi_worker"]["allreduce_seconds"]
        mw_step = results["multi_worker"]["epoch_seconds"] / results["multi_worker"]["steps"]
        print(f"measured all-reduce of that tensor, 2 workers on localhost: {ar * 1e3:.1f} ms "
              f"= {ar / mw_step:.0%} of a multi_worker step "
              f"({grad_bytes / ar / 2**30:.2f} GiB/s effective: a 2-worker ring sends "
              "2(N-1)/N = 1x the bytes per worker)")
    # Paper model: ring all-reduce sends 2(N-1)/N x bytes per worker per step; compute per
    # step stays constant at a fixed per-replica batch (weak scaling).
    for compute, label in ((ref_step, "as measured here on CPU"),
                           (args.gpu_step_ms / 1e3, "an ASSUMED GPU step, --gpu-step-ms")):
        print(f"\nPaper model (weak scaling, compute/step {compute * 1e3:.0f} ms = {label}; "
              "comm = 2(N-1)/N x bytes / bandwidth, not overlapped with compute):")
        print(f"{'N':>4}" + "".join(f"{name:>22}" for name in
                                    ("NVLink/PCIe 12 GB/s", "25 GbE 3.1 GB/s",
                                     "1 GbE 0.125 GB/s")))
        for n in (2, 4, 8, 16):
            cells = []
            for bw in (12e9, 3.1e9, 0.125e9):
                comm = 2 * (n - 1) / n * grad_bytes / bw
                cells.append(f"{comm * 1e3:8.1f} ms, eff {compute / (compute + comm):4.0%}")
            print(f"{n:>4}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    sys.exit(main())
