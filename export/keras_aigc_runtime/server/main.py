"""`keras-aigc-serve BUNDLE`: serve an export bundle over the Open Inference Protocol."""

import argparse
import logging
import sys


def build_parser():
    p = argparse.ArgumentParser(
        prog="keras-aigc-serve",
        description="Serve a keras-aigc export bundle over the Open Inference Protocol (KServe "
                    "v2, with Triton's binary tensor extension). No TensorFlow needed.")
    p.add_argument("bundle", help="export bundle directory (manifest.json)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", default="onnx", choices=["onnx", "tflite"])
    p.add_argument("--variant", default=None,
                   help="quantization (none, float16, dynamic_int8, int8) or a file of the bundle")
    p.add_argument("--max-batch", type=int, default=64,
                   help="most rows merged into one model run by dynamic batching")
    p.add_argument("--max-delay-ms", type=float, default=5.0,
                   help="how long the first queued request waits for others to join")
    p.add_argument("--no-batching", action="store_true",
                   help="run every request on its own (no dynamic batching)")
    p.add_argument("--max-request-batch", type=int, default=64,
                   help="most rows in one request (larger: HTTP 400)")
    p.add_argument("--max-body-bytes", type=int, default=16 << 20,
                   help="largest request body in bytes (larger: HTTP 413)")
    p.add_argument("--instances", type=int, default=1,
                   help="model runs in parallel (Triton's instance count); pair with "
                        "--num-threads so that instances x threads fits the cores")
    p.add_argument("--num-threads", type=int, default=None,
                   help="ONNX Runtime intra-op / LiteRT threads")
    p.add_argument("--graceful-timeout", type=float, default=30.0,
                   help="seconds to finish in-flight requests after SIGTERM")
    p.add_argument("--sign", default=None, metavar="DIR",
                   help="sign every PNG with C2PA Content Credentials using the key and "
                        "certificate chain in DIR (see `keras-aigc credentials init`)")
    p.add_argument("--log-level", default="info")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from keras_aigc_runtime import load
    from keras_aigc_runtime.server.app import ServerConfig, create_app

    try:
        config = ServerConfig(max_batch=args.max_batch, max_delay_ms=args.max_delay_ms,
                              batching=not args.no_batching,
                              max_request_batch=args.max_request_batch,
                              max_body_bytes=args.max_body_bytes, instances=args.instances)
        generator = load(args.bundle, backend=args.backend, variant=args.variant,
                         num_threads=args.num_threads)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"keras-aigc-serve: {e}", file=sys.stderr)
        return 2
    try:
        app = create_app(generator, config, sign=args.sign)
    except (ValueError, FileNotFoundError) as e:
        print(f"keras-aigc-serve: --sign: {e}", file=sys.stderr)
        return 2
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish in-flight requests (up to
    # --graceful-timeout), then run the app's lifespan shutdown (drains the batchers).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                timeout_graceful_shutdown=args.graceful_timeout, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
