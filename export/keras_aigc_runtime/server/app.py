"""The Starlette (ASGI) application: Open Inference Protocol v2 routes over a Generator."""

import concurrent.futures
import contextlib
import dataclasses
import logging
import time

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keras_aigc_runtime import __version__
from keras_aigc_runtime.generator import InputError
from keras_aigc_runtime.png import encode_png, image_grid
from keras_aigc_runtime.provenance import stamp_png
from keras_aigc_runtime.provenance.credentials import as_credentials
from keras_aigc_runtime.server.batcher import DynamicBatcher, ShuttingDown
from keras_aigc_runtime.server.metrics import Metrics
from keras_aigc_runtime.server.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    datatype_of,
    decode_body,
    encode_infer_response,
    parse_infer_request,
)

logger = logging.getLogger("keras_aigc_runtime.server")


@dataclasses.dataclass
class ServerConfig:
    """Server limits and batching.

    Args:
        max_batch: int. Most rows merged into one model run. Defaults to `64`.
        max_delay_ms: float. How long the first queued request waits for others.
            Defaults to `5`.
        batching: bool. `False` runs every request on its own. Defaults to `True`.
        max_request_batch: int. Most rows in one request (larger: HTTP 400).
            Defaults to `64`.
        max_body_bytes: int. Largest request body (larger: HTTP 413). Defaults to 16 MiB.
        instances: int. Model runs at once per signature (Triton's instance count).
            Defaults to `1`.
    """

    max_batch: int = 64
    max_delay_ms: float = 5.0
    batching: bool = True
    max_request_batch: int = 64
    max_body_bytes: int = 16 << 20
    instances: int = 1

    def __post_init__(self):
        for name in ("max_batch", "max_request_batch", "max_body_bytes", "instances"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {name}={v!r}.")
        if not self.max_delay_ms >= 0:
            raise ValueError(f"max_delay_ms must be >= 0, got max_delay_ms={self.max_delay_ms!r}.")


def _error(message, status):
    return JSONResponse({"error": message}, status_code=status)


def _tensor_meta(t):
    return {"name": t["name"], "datatype": datatype_of(t["dtype"]), "shape": list(t["shape"])}


def create_app(generator, config=None, sign=None):
    """Returns the ASGI app serving `generator` (a `keras_aigc_runtime.Generator`).

    `sign` (a credentials directory) signs every PNG of the `generate.png` route with C2PA
    Content Credentials; without it those PNGs carry unsigned text chunks.

    Models are named `<bundle name>_<signature>` (as in the bundle's Triton
    repository), and `<bundle name>` is the image-producing signature.
    """
    config = config or ServerConfig()
    credentials = as_credentials(sign)  # loaded now: a bad directory fails at start-up
    metrics = Metrics()
    models = {f"{generator.name}_{s}": s for s in generator.signatures}
    models[generator.name] = generator.primary
    executor = concurrent.futures.ThreadPoolExecutor(
        config.instances * len(generator.signatures), thread_name_prefix="model")
    batchers = {}
    state = {"ready": False}

    def run_fn(signature):
        def fn(inputs):
            return generator.run_checked(inputs, signature)
        return fn

    @contextlib.asynccontextmanager
    async def lifespan(app):
        for s in generator.signatures:
            b = DynamicBatcher(run_fn(s), config.max_batch if config.batching else 1,
                               config.max_delay_ms / 1000.0, executor,
                               on_batch=lambda rows, s=s: metrics.batch(f"{generator.name}_{s}",
                                                                        rows),
                               instances=config.instances)
            b.start()
            batchers[s] = b
        state["ready"] = True
        logger.info("Serving %s on models %s", generator, sorted(models))
        try:
            yield
        finally:
            # uvicorn has already waited for in-flight requests; drain what is queued.
            state["ready"] = False
            for b in batchers.values():
                await b.close()
            executor.shutdown(wait=True)
            logger.info("Server stopped.")

    def model_or_404(request):
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name not in models:
            raise ProtocolError(f"Unknown model {name!r}. This server has models "
                                f"{sorted(models)}.", 404)
        if version not in (None, "", "1"):
            raise ProtocolError(f"Unknown version {version!r} of model {name!r}; it has "
                                f"version '1'.", 404)
        return name, models[name]

    async def server_meta(request):
        return JSONResponse({"name": "keras-aigc-runtime", "version": __version__,
                             "extensions": ["binary_tensor_data"]})

    async def live(request):
        return Response(status_code=200)

    async def ready(request):
        return Response(status_code=200 if state["ready"] else 503)

    async def model_meta(request):
        try:
            name, sig = model_or_404(request)
        except ProtocolError as e:
            return _error(str(e), e.status)
        spec = generator.signature_spec(sig)
        return JSONResponse({
            "name": name, "versions": ["1"], "platform": f"keras_aigc_{generator.backend}",
            "inputs": [_tensor_meta(t) for t in spec["inputs"]],
            "outputs": [_tensor_meta(t) for t in spec["outputs"]],
            "parameters": {"signature": sig, "family": generator.family,
                           "num_classes": generator.num_classes,
                           "max_request_batch": config.max_request_batch,
                           "value_range": generator.manifest["output"]["value_range"]}})

    async def model_ready(request):
        try:
            model_or_404(request)
        except ProtocolError as e:
            return _error(str(e), e.status)
        return Response(status_code=200 if state["ready"] else 503)

    async def read_body(request):
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise ProtocolError(f"Content-Length must be an int, got {length!r}.") from None
            if declared > config.max_body_bytes:
                raise ProtocolError(f"Request body of {declared} bytes is over the limit of "
                                    f"{config.max_body_bytes} bytes.", 413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > config.max_body_bytes:
                raise ProtocolError(f"Request body is over the limit of "
                                    f"{config.max_body_bytes} bytes.", 413)
            chunks.append(chunk)
        body = b"".join(chunks)
        return decode_body(body, request.headers.get("content-encoding"), config.max_body_bytes)

    async def timed(request, model_name, handler):
        start = time.perf_counter()
        metrics.in_flight += 1
        status = 500
        # Unknown names share one label so that junk requests cannot grow /metrics.
        model_name = model_name if model_name in models else "_unknown"
        try:
            response = await handler()
            status = response.status_code
            return response
        except (ProtocolError, InputError) as e:
            status = getattr(e, "status", 400)
            return _error(str(e), status)
        except ShuttingDown as e:
            status = 503
            return _error(str(e), status)
        except Exception as e:  # noqa: BLE001 - a server fault, not the caller's input
            logger.exception("Inference failed")
            return _error(f"Internal error: {type(e).__name__}: {e}", 500)
        finally:
            metrics.in_flight -= 1
            metrics.request(model_name, status, time.perf_counter() - start)

    async def infer(request):
        name = request.path_params["name"]

        async def handle():
            model_name, sig = model_or_404(request)
            body = await read_body(request)
            req, arrays, (requested, binary_outputs) = parse_infer_request(
                body, request.headers.get(HEADER_LENGTH))
            spec = generator.signature_spec(sig)
            declared = {t["name"]: t for t in spec["inputs"]}
            for k, a in arrays.items():
                if k in declared and datatype_of(a.dtype) != datatype_of(declared[k]["dtype"]):
                    raise ProtocolError(f"Input {k!r} must have datatype "
                                        f"{datatype_of(declared[k]['dtype'])}, got "
                                        f"{datatype_of(a.dtype)}.")
            out_names = [t["name"] for t in spec["outputs"]]
            unknown = [o for o in (requested or []) if o not in out_names]
            if unknown:
                raise ProtocolError(f"Unknown outputs {unknown}; model {model_name!r} has "
                                    f"outputs {out_names}.")
            inputs = generator.check_inputs(arrays, sig, max_batch=config.max_request_batch)
            outputs = await batchers[sig].submit(inputs)
            body, headers = encode_infer_response(model_name, req.get("id"), outputs,
                                                  requested, binary_outputs)
            return Response(body, headers=headers)

        return await timed(request, name, handle)

    async def png(request):
        name = request.path_params["name"]

        async def handle():
            model_name, sig = model_or_404(request)
            if sig not in ("generate", "decode"):
                raise ProtocolError(f"Model {model_name!r} ({sig}) does not produce images; "
                                    f"use {generator.name!r}.")
            q = request.query_params
            try:
                n = int(q.get("n", "16"))
                seed = int(q["seed"]) if "seed" in q else None
                ncols = int(q["ncols"]) if "ncols" in q else None
                labels = ([int(v) for v in q["labels"].split(",")] if "labels" in q else None)
            except ValueError as e:
                raise ProtocolError(f"Query parameters n, seed, ncols must be ints and labels "
                                    f"comma-separated ints: {e}") from None
            if not 1 <= n <= config.max_request_batch:
                raise ProtocolError(f"n={n} must be in 1 ... {config.max_request_batch}.")
            if ncols is not None and ncols < 1:
                raise ProtocolError(f"ncols={ncols} must be >= 1.")
            rng = np.random.default_rng(seed)
            from keras_aigc_runtime import postprocess

            z = postprocess.sample_latents(generator.manifest["latent"], n, rng)
            spec = generator.signature_spec(sig)
            raw = {}
            for t in spec["inputs"]:
                if t.get("role") == "latent":
                    raw[t["name"]] = z
                elif t.get("role") == "label":  # default: the classes in turn, as Keras
                    if labels is not None and len(labels) == 1:
                        labels = labels * n
                    raw[t["name"]] = postprocess.normalize_labels(
                        labels, n, generator.num_classes, ProtocolError)
            if labels is not None and not any(t.get("role") == "label" for t in spec["inputs"]):
                raise ProtocolError(f"labels are only for conditional models; model "
                                    f"{model_name!r} has no input with role 'label'.")
            inputs = generator.check_inputs(raw, sig, max_batch=config.max_request_batch)
            out = await batchers[sig].submit(inputs)
            image_name = next((t["name"] for t in spec["outputs"] if t.get("role") == "image"),
                              spec["outputs"][0]["name"])
            grid = image_grid(generator.to_uint8(out[image_name]), ncols)
            used = next((raw[t["name"]] for t in spec["inputs"] if t.get("role") == "label"),
                        None)
            claims = generator.provenance_claims(seed, None if used is None else used.tolist())
            return Response(stamp_png(encode_png(grid), claims, sign=credentials),
                            media_type="image/png")

        return await timed(request, name, handle)

    async def metrics_route(request):
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def http_error(request, exc):
        return _error(exc.detail or "HTTP error", exc.status_code)

    routes = [
        Route("/v2", server_meta), Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2/models/{name}", model_meta),
        Route("/v2/models/{name}/versions/{version}", model_meta),
        Route("/v2/models/{name}/ready", model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/generate.png", png),
        Route("/metrics", metrics_route),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: http_error})
    app.state.metrics = metrics
    app.state.models = models
    return app
