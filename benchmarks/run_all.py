"""Regenerates benchmarks/RESULTS.md: a machine and versions header, then one section per
benchmark script that exists in this directory.

    python benchmarks/run_all.py [--quick] [--timeout 1800] [--only train_speed ...]

Each script runs in its own process (so one crash or hang cannot take the others down) with
a time limit, and with two environment variables:

- `KERAS_AIGC_BENCH_MARKDOWN`: a path where the script should write its Markdown table.
  When the script writes it, the table goes into RESULTS.md as is; otherwise the tail of
  its output is included as a code block.
- `KERAS_AIGC_BENCH_QUICK=1` with `--quick`: the script should use its smallest budget.

Every figure in RESULTS.md comes from this one run; ratios are computed inside each script
against a reference run in the same process.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# (script, section title). Scripts that do not exist (yet) are listed as missing.
BENCHMARKS = [
    ("train_speed", "Training speed: model.fit against a hand-written tf.function step"),
    ("train_gans", "Quality: GANs on MNIST at a fixed epoch budget (domain features)"),
    ("vae_nll", "Quality: VAE test NLL"),
    ("export_speed", "Inference speed of the exported formats"),
    ("serving_load", "Serving under load"),
    ("distributed_scaling", "Distributed scaling"),
]


def _version(module):
    try:
        mod = __import__(module)
        return getattr(mod, "__version__", "?")
    except Exception:  # noqa: BLE001 - a missing optional package is reported, not fatal
        return "not installed"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def header():
    versions = ", ".join(f"{name} {_version(mod)}" for name, mod in [
        ("TensorFlow", "tensorflow"), ("Keras", "keras"),
        ("TFP", "tensorflow_probability"), ("NumPy", "numpy"), ("SciPy", "scipy"),
        ("ONNX Runtime", "onnxruntime"), ("tf2onnx", "tf2onnx"),
        ("LiteRT", "ai_edge_litert"),
    ])
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    return "\n".join([
        "# keras-aigc benchmark results",
        "",
        "Regenerate with `python benchmarks/run_all.py` (see its docstring for budgets).",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- Commit: {_git_commit()}",
        f"- Machine: {_cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"{platform.system()} {platform.release()}",
        f"- Load average at start: {', '.join(str(round(v, 2)) for v in load)} "
        "(other processes share the CPUs; rounds alternate between a figure and its "
        "reference so that load hits both)",
        f"- Python {platform.python_version()}; {versions}",
    ])


def run_one(name, timeout, quick, reuse=False):
    script = os.path.join(HERE, f"{name}.py")
    if not os.path.isfile(script):
        return None, f"_Not run: `benchmarks/{name}.py` does not exist yet._"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    table_path = os.path.join(HERE, "results", f"{name}.md")
    if reuse and os.path.isfile(table_path):
        stamp = datetime.datetime.fromtimestamp(os.path.getmtime(table_path),
                                                datetime.timezone.utc)
        with open(table_path) as f:
            return "reused", (f"{f.read().strip()}\n\n_{name}.py: not re-run; table from an "
                              f"earlier run at {stamp:%Y-%m-%d %H:%M UTC} (--reuse)._")
    if os.path.exists(table_path):
        os.remove(table_path)
    env = dict(os.environ, KERAS_AIGC_BENCH_MARKDOWN=table_path,
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    if quick:
        env["KERAS_AIGC_BENCH_QUICK"] = "1"
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, script], cwd=ROOT, env=env, timeout=timeout,
                              capture_output=True, text=True)
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
        output = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        status = f"timed out after {timeout} s"
        output = (e.stdout or b"").decode(errors="replace") if isinstance(
            e.stdout, bytes) else (e.stdout or "")
    wall = time.perf_counter() - t0
    body = []
    if os.path.isfile(table_path):
        # On a time limit a script may have written a partial table: keep it.
        with open(table_path) as f:
            body.append(f.read().strip())
    if status != "ok":
        tail = "\n".join(line for line in output.splitlines()
                          if not line.startswith(("I0000", "E0000", "WARNING: All log",
                                                  "W0000")))[-3000:]
        body.append(f"```\n{tail}\n```")
    body.append(f"\n_{name}.py: {status}, wall time {wall:.0f} s._")
    return status, "\n".join(body)


# Quality recipes (configs/) run by --quality, in priority order.
QUALITY_RECIPES = ["dcgan_mnist_quality", "cgan_mnist_quality", "sngan_mnist",
                   "wgan_gp_mnist"]


def run_quality(args):
    """Floor check, then train + evaluate each recipe; the table goes into RESULTS.md."""
    script = os.path.join(HERE, "quality.py")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))

    def call(*cmd):
        print("[run_all] " + " ".join(cmd), file=sys.stderr, flush=True)
        return subprocess.run([sys.executable, script, *cmd], cwd=ROOT, env=env).returncode

    call("floor")
    for name in QUALITY_RECIPES:
        run_dir = os.path.join(args.runs_dir, name)
        if call("train", os.path.join("configs", f"{name}.yaml"), run_dir,
                "--budget-minutes", str(2 * args.budget_minutes)) == 0:
            call("evaluate", run_dir)
    # The VAE recipe: trained under the same CPU budget, NLL at k=5000 on the full test
    # set, its row appended to results/vae_nll.jsonl.
    vae_cmd = [sys.executable, os.path.join(HERE, "vae_nll.py"), "--config",
               os.path.join("configs", "vae_mnist_quality.yaml"), "--cpu-minutes",
               str(2 * args.budget_minutes), "--checkpoint-every", str(args.budget_minutes / 3),
               "--out", os.path.join(args.runs_dir, "vae_mnist_quality"), "--json",
               os.path.join(HERE, "results", "vae_nll_quality.json"), "--record"]
    print("[run_all] " + " ".join(vae_cmd), file=sys.stderr, flush=True)
    subprocess.run(vae_cmd, cwd=ROOT, env=env)
    table_path = os.path.join(HERE, "results", "quality.md")
    subprocess.run([sys.executable, script, "table"], cwd=ROOT,
                   env=dict(env, KERAS_AIGC_BENCH_MARKDOWN=table_path))
    with open(table_path) as f:
        print(f.read())
    print(f"Table in {table_path}; paste it into RESULTS.md's quality section.")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description="Regenerate benchmarks/RESULTS.md.")
    p.add_argument("--quick", action="store_true", help="Smallest budget of each script.")
    p.add_argument("--timeout", type=int, default=1800, help="Seconds per script.")
    p.add_argument("--only", nargs="*", default=None, help="Run only these scripts.")
    p.add_argument("--reuse", nargs="*", default=(),
                   help="Include these scripts' last tables from benchmarks/results/ "
                        "instead of re-running them (marked as such).")
    p.add_argument("--quality", action="store_true",
                   help="Train every recipe of QUALITY_RECIPES within --budget-minutes and "
                        "score it with the standard FID network (benchmarks/quality.py); "
                        "the FID floor check comes first.")
    p.add_argument("--budget-minutes", type=float, default=60.0,
                   help="Wall minutes on 2 cores per recipe; the CPU-time limit is twice "
                        "this (default 60 -> 120 CPU-minutes).")
    p.add_argument("--runs-dir", default=os.path.join(ROOT, "..", "runs", "quality"),
                   help="Where the quality runs' directories go (outside the repo).")
    p.add_argument("--output", default=os.path.join(HERE, "RESULTS.md"))
    args = p.parse_args(argv)
    if args.quality:
        return run_quality(args)
    sections = [header()]
    for name, title in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"[run_all] {name} ...", file=sys.stderr, flush=True)
        status, body = run_one(name, args.timeout, args.quick, reuse=name in args.reuse)
        print(f"[run_all] {name}: {status or 'missing'}", file=sys.stderr, flush=True)
        sections.append(f"## {title}\n\n{body}")
    with open(args.output, "w") as f:
        f.write("\n\n".join(sections) + "\n")
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
