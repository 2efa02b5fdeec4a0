"""The founding case study: the fully connected MNIST GAN against the DCGAN preset, at equal CPU.

    python benchmarks/case_study.py --budget-minutes 5 --workdir /tmp/case_study [--num 10000]

Trains `configs/mlp_gan_mnist.yaml` (the `mlp_mnist` preset: 100-256-512-784 G, 784-256-128-1
D, batch 128) and `configs/dcgan_mnist.yaml` (the `tf_tutorial` DCGAN, batch 256) each in a
fresh process until it has used `--budget-minutes` of CPU time (`benchmarks/quality.py
train`: the budget is process CPU time, so the comparison does not depend on the machine's
load), both in float32. Then scores each final model with `keras-aigc evaluate --features
domain` (FID, KID and precision/recall on the features of the MNIST domain classifier,
trained once by `keras-aigc train-features` into `WORKDIR/features`), and, with
`--standard-fid N`, also with the standard FID network on N samples (needs
`KERAS_AIGC_FID_WEIGHTS`; N below 10,000 biases FID upward, equally for both models).

Prints one row per model and writes them to `benchmarks/results/case_study.json`. Every
child's exact command is in the JSON, so each row can be regenerated alone.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = (("mlp_mnist (GAN, fully connected)", "configs/mlp_gan_mnist.yaml"),
          ("tf_tutorial (DCGAN)", "configs/dcgan_mnist.yaml"))


def _run(cmd, log):
    print("$", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        res = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                             env=dict(os.environ, PYTHONPATH=ROOT))
    if res.returncode:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"command failed ({res.returncode}): {' '.join(cmd)}\n{tail}")
    return " ".join(cmd)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-minutes", type=float, default=5.0,
                   help="CPU minutes of training per model (default: 5).")
    p.add_argument("--workdir", required=True, help="Run directories and logs go here.")
    p.add_argument("--num", type=int, default=10000, help="Generated samples per model.")
    p.add_argument("--standard-fid", type=int, default=0,
                   help="Also score N samples with the standard FID network (0: off).")
    p.add_argument("--json", default=os.path.join(HERE, "results", "case_study.json"))
    args = p.parse_args(argv)
    if args.budget_minutes <= 0:
        p.error(f"--budget-minutes must be > 0, got {args.budget_minutes}.")
    if args.num < 2 or args.standard_fid < 0:
        p.error("--num must be >= 2 and --standard-fid >= 0.")
    os.makedirs(args.workdir, exist_ok=True)
    log = os.path.join(args.workdir, "case_study.log")
    py = sys.executable
    cli = os.path.join(os.path.dirname(py), "keras-aigc")  # the installed entry point
    features = os.path.join(args.workdir, "features")
    rows = []
    for name, config in MODELS:
        run = os.path.join(args.workdir, os.path.splitext(os.path.basename(config))[0])
        row = {"model": name, "config": config, "run_dir": run}
        if not os.path.isfile(os.path.join(run, "budget.json")):
            row["train_command"] = _run(
                [py, "benchmarks/quality.py", "train", config, run, "--budget-minutes",
                 str(args.budget_minutes), "--set", "training.epochs=1000",
                 "--set", "training.sample_every=1000"], log)
        with open(os.path.join(run, "budget.json")) as f:
            row["budget"] = json.load(f)
        with open(os.path.join(run, "cpu_log.jsonl")) as f:
            last = [json.loads(x) for x in f if x.strip()][-1]
        row["epochs"] = last["epoch"]
        with open(os.path.join(run, "config.yaml")) as f:
            cfg = yaml.safe_load(f)
        row["batch_size"] = cfg["data"]["batch_size"]
        if not os.path.isfile(os.path.join(features, "domain_classifier.keras")):
            _run([cli, "train-features", os.path.join(run, "config.yaml"),
                  "--output", features], log)
        out = os.path.join(run, "metrics_domain.json")
        row["evaluate_command"] = _run(
            [cli, "evaluate", run, "--features", "domain",
             "--features-dir", features, "--num-samples", str(args.num), "--output", out], log)
        with open(out) as f:
            row["domain"] = json.load(f)
        if args.standard_fid:
            out = os.path.join(run, "metrics_fid.json")
            row["standard_fid_command"] = _run(
                [cli, "evaluate", run, "--features", "fid",
                 "--num-samples", str(args.standard_fid), "--output", out], log)
            with open(out) as f:
                row["standard"] = json.load(f)
        rows.append(row)
    print(f"\nCase study at {args.budget_minutes:g} CPU-minutes of training per model "
          f"({args.num} samples; domain features; load average {os.getloadavg()[0]:.1f})")
    print(f"{'model':<34} {'epochs':>6} {'CPU-min':>7} {'domain FID':>10} {'KID':>9} "
          f"{'precision':>9} {'recall':>7}" + ("  standard FID" if args.standard_fid else ""))
    for r in rows:
        d = r["domain"]
        line = (f"{r['model']:<34} {r['epochs']:>6} {r['budget']['train_cpu_minutes']:>7} "
                f"{_metric(d, 'fid'):>10.3f} {_metric(d, 'kid'):>9.5f} "
                f"{_metric(d, 'precision'):>9.3f} {_metric(d, 'recall'):>7.3f}")
        if args.standard_fid:
            line += f"  {_metric(r['standard'], 'fid'):>12.2f}"
        print(line)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"budget_cpu_minutes": args.budget_minutes, "num_generated": args.num,
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   "load_average": os.getloadavg()[0], "rows": rows}, f, indent=2)
    return 0


def _metric(metrics, key):
    """A metric from `keras-aigc evaluate`'s metrics.json (flat or under "metrics")."""
    for source in (metrics, metrics.get("metrics", {})):
        if isinstance(source, dict) and key in source:
            value = source[key]
            return float(value["value"] if isinstance(value, dict) else value)
    raise KeyError(f"{key!r} not in metrics.json keys {sorted(metrics)}")


if __name__ == "__main__":
    sys.exit(main())
