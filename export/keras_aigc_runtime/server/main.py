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
    p.add_argument("--max-delay-ms", type=float, default=0.0,
                   help="how long the first queued request waits for others to join; 0 "
                        "(default) is adaptive batching: run at once when idle, merge what "
                        "queued during the previous run (Triton's default)")
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
    g = p.add_argument_group("limits (defaults are safe beyond localhost)")
    g.add_argument("--max-connections", type=int, default=512,
                   help="open connections; more get 503 and are closed")
    g.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds for a request's headers (slowloris); the connection closes")
    g.add_argument("--body-timeout", type=float, default=30.0,
                   help="seconds for a request's body (slower: 408)")
    g.add_argument("--keep-alive-timeout", type=int, default=5,
                   help="seconds an idle keep-alive connection stays open")
    g.add_argument("--max-queue", type=int, default=256,
                   help="requests waiting per model (more: 503 with Retry-After)")
    g.add_argument("--request-timeout", type=float, default=30.0,
                   help="deadline of a request from arrival to result (later: 504)")
    g.add_argument("--max-png-pixels", type=int, default=4096 * 4096,
                   help="most pixels in one generate.png grid")
    g.add_argument("--max-body-readers", type=int, default=8,
                   help="requests receiving/parsing a body at once (bounds body memory)")
    g.add_argument("--parse-workers", type=int, default=1,
                   help="processes parsing large JSON bodies off the event loop (0: a thread)")
    s_ = p.add_argument_group("security")
    s_.add_argument("--auth-token-file", default=None,
                    help="file of bearer tokens (one per line); also read from the "
                         "KERAS_AIGC_SERVE_TOKENS environment variable (comma-separated). "
                         "With tokens, every route but /v2/health/* needs "
                         "'Authorization: Bearer <token>' (else 401)")
    s_.add_argument("--ssl-certfile", default=None, help="TLS certificate (PEM)")
    s_.add_argument("--ssl-keyfile", default=None, help="TLS private key (PEM)")
    s_.add_argument("--require-signature", metavar="PUBKEY", default=None,
                    help="Ed25519 public key (PEM); refuse a bundle whose manifest.json.sig "
                         "is missing or does not verify")
    s_.add_argument("--sign", default=None, metavar="DIR",
                    help="sign every PNG with C2PA Content Credentials using the key and "
                         "certificate chain in DIR (see `keras-aigc credentials init`)")
    s_.add_argument("--watermark", default=None, metavar="PAYLOAD",
                    help="embed an invisible DWT-DCT watermark carrying PAYLOAD (32 bits, "
                         "decimal or 0x-hex; 'model' = the first 8 hex digits of the bundle's "
                         "manifest sha256) in every PNG of the generate.png route; grids under "
                         "128 px a side are upscaled first. Read it with `keras-aigc "
                         "detect-watermark`")
    p.add_argument("--log-level", default="info")
    return p


def _watermark_payload(text, generator):
    """`--watermark`: None, 'model' (the bundle's manifest sha256 prefix) or a 32-bit int."""
    if text is None:
        return None
    from keras_aigc_runtime.provenance import watermark

    if text == "model":
        return watermark.model_id(generator.name, generator.manifest_sha256)
    return watermark.parse_payload(text)


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from keras_aigc_runtime import load
    from keras_aigc_runtime.server.app import ServerConfig, create_app
    from keras_aigc_runtime.server.auth import read_tokens
    from keras_aigc_runtime.server.connection import guarded_protocol

    try:
        if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
            raise ValueError("TLS needs both --ssl-certfile and --ssl-keyfile.")
        for name in ("max_connections", "keep_alive_timeout"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got "
                                 f"{getattr(args, name)}.")
        if not args.header_timeout > 0:
            raise ValueError(f"--header-timeout must be > 0, got {args.header_timeout}.")
        config = ServerConfig(max_batch=args.max_batch, max_delay_ms=args.max_delay_ms,
                              batching=not args.no_batching,
                              max_request_batch=args.max_request_batch,
                              max_body_bytes=args.max_body_bytes, instances=args.instances,
                              max_queue=args.max_queue, request_timeout_s=args.request_timeout,
                              max_png_pixels=args.max_png_pixels,
                              body_timeout_s=args.body_timeout,
                              max_body_readers=args.max_body_readers,
                              parse_workers=args.parse_workers)
        tokens = read_tokens(args.auth_token_file)
        generator = load(args.bundle, backend=args.backend, variant=args.variant,
                         num_threads=args.num_threads, public_key=args.require_signature)
    except (ValueError, FileNotFoundError, ImportError, OSError) as e:
        print(f"keras-aigc-serve: {e}", file=sys.stderr)
        return 2
    if not tokens and args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("keras_aigc_runtime.server").warning(
            "Serving on %s without authentication: anyone who reaches the port can use the "
            "model. Pass --auth-token-file (README: Running the server in production).",
            args.host)
    try:
        payload = _watermark_payload(args.watermark, generator)
    except ValueError as e:
        print(f"keras-aigc-serve: --watermark: {e}", file=sys.stderr)
        return 2
    try:
        app = create_app(generator, config, auth_tokens=tokens or None, sign=args.sign,
                         watermark=payload)
    except (ValueError, FileNotFoundError) as e:
        print(f"keras-aigc-serve: --sign: {e}", file=sys.stderr)
        return 2
    metrics = app.state.metrics
    protocol = guarded_protocol(args.header_timeout, args.max_connections,
                                on_refused=metrics.connection_refused,
                                on_timeout=metrics.connection_timed_out)
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish in-flight requests (up to
    # --graceful-timeout), then run the app's lifespan shutdown (drains the batchers).
    # limit_concurrency: uvicorn answers 503 past it (it counts connections and tasks).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level.lower(),
                timeout_graceful_shutdown=args.graceful_timeout, access_log=False,
                http=protocol, limit_concurrency=args.max_connections + 1,
                timeout_keep_alive=args.keep_alive_timeout,
                ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

