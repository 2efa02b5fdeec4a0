"""`keras-aigc explore RUN --interpolate | --traverse | --active-units`: latent-space views."""

import json
import os

import numpy as np


def add_parser(subparsers):
    p = subparsers.add_parser(
        "explore", help="Latent-space views of a trained model: PNG grids and a JSON.",
        description="Writes PNG grids (interpolations, traversals) and a JSON of statistics "
                    "(active units and KL per dimension for VAEs) into --output.")
    p.add_argument("model", help="A run directory (its model.keras) or a .keras file.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--interpolate", action="store_true",
                      help="rows of interpolations between pairs of random latents")
    what.add_argument("--traverse", action="store_true",
                      help="one row per latent dimension, that dimension swept over --range")
    what.add_argument("--active-units", action="store_true",
                      help="VAE: active units (Burda et al.) and KL per dimension on --data")
    p.add_argument("--method", default="slerp", choices=["slerp", "lerp"])
    p.add_argument("--steps", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--rows", type=int, default=8, help="interpolation rows / traversal dims")
    p.add_argument("--range", type=float, default=3.0, help="traversal sweeps -R..R")
    p.add_argument("--psi", type=float, default=1.0, help="truncation of the random latents")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None,
                   help="data source for --active-units (e.g. digits, npz:PATH)")
    p.add_argument("--num-examples", type=int, default=1000)
    p.add_argument("--output", default=None, help="directory (default <run>/explore)")
    p.set_defaults(func=main)
    return p


def main(args):

    from keras_aigc import latent
    from keras_aigc.cli.paths import load_model, resolve_model_path
    from keras_aigc.utils import save_grid

    if args.steps < 2:
        raise ValueError(f"--steps must be >= 2, got {args.steps}.")
    if args.rows < 1:
        raise ValueError(f"--rows must be >= 1, got {args.rows}.")
    if args.active_units and not args.data:
        raise ValueError("--active-units needs --data SOURCE (e.g. digits or npz:PATH).")
    path = resolve_model_path(args.model)
    model = load_model(path)
    d = latent.traversal.latent_dim_of(model)
    out = args.output or os.path.join(os.path.dirname(os.path.abspath(path)), "explore")
    os.makedirs(out, exist_ok=True)
    value_range = model.value_range
    decode = latent.decode_fn(model)
    rng = np.random.default_rng(args.seed)
    stats = {"model": path, "latent_dim": d}
    if args.interpolate:
        z0 = latent.truncate(rng.standard_normal((args.rows, d)), args.psi)
        z1 = latent.truncate(rng.standard_normal((args.rows, d)), args.psi)
        z = latent.interpolate(z0, z1, args.steps, args.method).reshape(-1, d)
        png = os.path.join(out, f"interpolate_{args.method}.png")
        save_grid(decode(z), png, value_range=value_range, rows=args.rows)
        stats.update(kind="interpolate", method=args.method, steps=args.steps, rows=args.rows,
                     psi=args.psi, png=png)
    elif args.traverse:
        values = np.linspace(-args.range, args.range, args.steps)
        dims = list(range(min(args.rows, d)))
        images = np.concatenate([latent.traverse(model, k, values)[1] for k in dims])
        png = os.path.join(out, "traverse.png")
        save_grid(images, png, value_range=value_range, rows=len(dims))
        stats.update(kind="traverse", dims=dims, values=values.tolist(), png=png)
    else:
        from keras_aigc import data as data_lib

        x, labels, _ = data_lib.load_arrays(args.data, "validation")
        x = x[:args.num_examples].astype(np.float32) / 255.0
        low, high = value_range
        x = x * (high - low) + low
        if tuple(x.shape[1:]) != tuple(model.image_shape):
            raise ValueError(f"--data {args.data!r} has images {x.shape[1:]}, the model "
                             f"expects {tuple(model.image_shape)}.")
        units = latent.active_units(model, x)
        stats.update(kind="active_units", data=args.data, num_examples=len(x), **units)
        try:
            stats["kl_per_dimension"] = latent.kl_per_dimension(model, x)
        except ValueError as e:
            stats["kl_per_dimension"] = None
            stats["kl_note"] = str(e)
    json_path = os.path.join(out, f"{stats['kind']}.json")
    with open(json_path, "w") as f:
        json.dump(stats, f, indent=2)
    print(f"wrote {stats.get('png', '')} {json_path}".replace("  ", " ").strip())
    if args.active_units:
        print(f"active units: {stats['count']} of {d} (threshold {stats['threshold']})")
    return 0
