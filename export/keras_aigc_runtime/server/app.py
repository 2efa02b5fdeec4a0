"""The Starlette (ASGI) application: Open Inference Protocol v2 routes over a Generator."""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import math
import multiprocessing
import time
import uuid

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from keras_aigc_runtime import __version__
from keras_aigc_runtime.generator import InputError
from keras_aigc_runtime.png import encode_png, image_grid
from keras_aigc_runtime.provenance import stamp_png
from keras_aigc_runtime.provenance.credentials import as_credentials
from keras_aigc_runtime.server.batcher import (
    DeadlineExceeded,
    DynamicBatcher,
    QueueFull,
    ShuttingDown,
)
from keras_aigc_runtime.server.metrics import Metrics
from keras_aigc_runtime.server.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    datatype_of,
    decode_body,
    encode_infer_response,
    parse_for_server,
)

logger = logging.getLogger("keras_aigc_runtime.server")


@dataclasses.dataclass
class ServerConfig:
    """Server limits and batching. Every limit has a default that is safe for a server
    exposed beyond localhost; README "Running the server in production" lists them.

    Args:
        max_batch: int. Most rows merged into one model run. Defaults to `64`.
        max_delay_ms: float. How long the first queued request waits for others;
            `0` is adaptive batching (run at once when idle, merge what queued during
            the previous run: Triton's default). Defaults to `0`.
        batching: bool. `False` runs every request on its own. Defaults to `True`.
        max_request_batch: int. Most rows in one request (larger: HTTP 400).
            Defaults to `64`.
        max_body_bytes: int. Largest request body (larger: HTTP 413). Defaults to 16 MiB.
        instances: int. Model runs at once per signature (Triton's instance count).
            Defaults to `1`.
        max_queue: int. Most requests waiting per signature (more: HTTP 503 with
            `Retry-After`). Defaults to `256`.
        request_timeout_s: float. Deadline of one request from its arrival to its
            result (later: HTTP 504). Defaults to `30`.
        max_png_pixels: int. Most pixels in one `generate.png` grid. Defaults to 16 Mi
            (4096 x 4096).
        body_timeout_s: float. Longest time to receive a request body (slower: HTTP 408).
            Defaults to `30`.
        max_body_readers: int. Requests receiving and parsing a body at once (others
            wait up to `body_timeout_s`, then HTTP 503); with `max_body_bytes` it bounds
            the memory held by request bodies. Defaults to `8`.
        parse_workers: int. Processes that parse large JSON bodies (`0`: parse in a
            thread). JSON decoding holds the GIL, so only a process keeps the event loop
            and `/v2/health/*` responsive during a large parse. Defaults to `1`.
        offload_bytes: int. JSON headers at least this large go to `parse_workers`.
            Defaults to 256 KiB.
    """

    max_batch: int = 64
    max_delay_ms: float = 0.0
    batching: bool = True
    max_request_batch: int = 64
    max_body_bytes: int = 16 << 20
    instances: int = 1
    max_queue: int = 256
    request_timeout_s: float = 30.0
    max_png_pixels: int = 4096 * 4096
    body_timeout_s: float = 30.0
    max_body_readers: int = 8
    parse_workers: int = 1
    offload_bytes: int = 256 << 10

    def __post_init__(self):
        for name in ("max_batch", "max_request_batch", "max_body_bytes", "instances",
                     "max_queue", "max_png_pixels", "max_body_readers", "offload_bytes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {name}={v!r}.")
        if (isinstance(self.parse_workers, bool) or not isinstance(self.parse_workers, int)
                or self.parse_workers < 0):
            raise ValueError(f"parse_workers must be an int >= 0, got "
                             f"parse_workers={self.parse_workers!r}.")
        if not self.max_delay_ms >= 0:
            raise ValueError(f"max_delay_ms must be >= 0, got max_delay_ms={self.max_delay_ms!r}.")
        for name in ("request_timeout_s", "body_timeout_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got "
                                 f"{name}={v!r}.")


MAX_SEED = 2**64 - 1


def _error(message, status, headers=None):
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _tensor_meta(t):
    return {"name": t["name"], "datatype": datatype_of(t["dtype"]), "shape": list(t["shape"])}


def _row_elements(spec):
    return sum(math.prod(d for d in t["shape"] if d != -1) for t in spec["inputs"])


class _ParsePool:
    """A lazily started process pool for large JSON bodies, restarted if a worker dies."""

    def __init__(self, workers):
        self.workers = workers
        self._pool = None

    def get(self):
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def reset(self):
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def create_app(generator, config=None, auth_tokens=None, sign=None, watermark=None):
    """Returns the ASGI app serving `generator` (a `keras_aigc_runtime.Generator`).

    `sign` (a credentials directory) signs every PNG of the `generate.png` route with C2PA
    Content Credentials; without it those PNGs carry unsigned text chunks. `watermark`
    (a 32-bit int payload) embeds the invisible DWT-DCT watermark in every such PNG before
    signing; grids under 128 px a side are upscaled first, as `Generator.save_png` does.
    The tensor routes (`/infer`) return model outputs and are never marked.

    Models are named `<bundle name>_<signature>` (as in the bundle's Triton
    repository), and `<bundle name>` is the image-producing signature.

    Args:
        generator: a loaded `keras_aigc_runtime.Generator`.
        config: `ServerConfig` or `None` (defaults).
        auth_tokens: iterable of str or `None`. When given, every route but
            `/v2/health/*` needs `Authorization: Bearer <token>` (else HTTP 401).
    """
    config = config or ServerConfig()
    credentials = as_credentials(sign)  # loaded now: a bad directory fails at start-up
    if watermark is not None:  # checked now: a bad payload fails at start-up
        from keras_aigc_runtime.provenance import watermark as wm

        wm.payload_bits(watermark)
    metrics = Metrics()
    models = {f"{generator.name}_{s}": s for s in generator.signatures}
    models[generator.name] = generator.primary
    executor = concurrent.futures.ThreadPoolExecutor(
        config.instances * len(generator.signatures), thread_name_prefix="model")
    # Decoding, array building, input checks and PNG encoding: off the event loop.
    cpu_executor = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="cpu")
    parse_pool = _ParsePool(config.parse_workers)
    # Bound on one tensor's values (and the JSON values) before anything is allocated;
    # generous (4x), so that the signature check names the exact problem below it.
    max_elements = {s: 4 * config.max_request_batch * max(_row_elements(
        generator.signature_spec(s)), 1) + 1024 for s in generator.signatures}
    batchers = {}
    state = {"ready": False, "readers": None}

    def run_fn(signature):
        def fn(inputs):
            return generator.run_checked(inputs, signature)
        return fn

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["readers"] = asyncio.Semaphore(config.max_body_readers)
        for s in generator.signatures:
            b = DynamicBatcher(run_fn(s), config.max_batch if config.batching else 1,
                               config.max_delay_ms / 1000.0, executor,
                               on_batch=lambda rows, s=s: metrics.batch(f"{generator.name}_{s}",
                                                                        rows),
                               instances=config.instances, max_queue=config.max_queue)
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
            cpu_executor.shutdown(wait=True)
            parse_pool.shutdown()
            logger.info("Server stopped.")

    def model_or_404(request):
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name not in models:
            raise ProtocolError(f"Unknown model {name[:100]!r}. This server has models "
                                f"{sorted(models)}.", 404)
        if version not in (None, "", "1"):
            raise ProtocolError(f"Unknown version {version[:100]!r} of model {name!r}; it has "
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

    async def receive_body(request):
        length = request.headers.get("content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise ProtocolError(f"Content-Length must be an int, got {length[:50]!r}."
                                    ) from None
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
        return b"".join(chunks)

    async def read_and_parse(request, sig):
        """Receives (within body_timeout_s) and parses the body, off the event loop."""
        readers = state["readers"]
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            await asyncio.wait_for(readers.acquire(), config.body_timeout_s)
        except asyncio.TimeoutError:
            raise _Busy(f"The server is busy receiving {config.max_body_readers} other "
                        f"request bodies; retry later.") from None
        try:
            left = config.body_timeout_s - (loop.time() - start)
            try:
                body = await asyncio.wait_for(receive_body(request), max(left, 0.001))
            except asyncio.TimeoutError:
                raise ProtocolError(f"The request body did not arrive within "
                                    f"{config.body_timeout_s:g} s.", 408) from None
            encoding = request.headers.get("content-encoding")
            header_length = request.headers.get(HEADER_LENGTH)
            if encoding not in (None, "", "identity"):
                body = await loop.run_in_executor(cpu_executor, decode_body, body, encoding,
                                                  config.max_body_bytes)
            json_size = len(body)
            if header_length is not None:
                try:
                    json_size = min(int(header_length), len(body))
                except ValueError:
                    pass  # parse_for_server reports it
            args = (body, header_length, max_elements[sig])
            if config.parse_workers and json_size >= config.offload_bytes:
                try:
                    return await loop.run_in_executor(parse_pool.get(), parse_for_server, *args)
                except concurrent.futures.process.BrokenProcessPool:
                    parse_pool.reset()
                    raise
            return await loop.run_in_executor(cpu_executor, parse_for_server, *args)
        finally:
            readers.release()

    async def timed(request, model_name, handler):
        start = time.perf_counter()
        metrics.in_flight += 1
        status = 500
        # Unknown names share one label so that junk requests cannot grow /metrics.
        model_name = model_name if model_name in models else "_unknown"
        deadline = time.monotonic() + config.request_timeout_s
        try:
            response = await handler(deadline)
            status = response.status_code
            return response
        except (ProtocolError, InputError) as e:
            status = getattr(e, "status", 400)
            return _error(str(e), status, {"connection": "close"} if status in (408, 413)
                          else None)
        except (ShuttingDown, QueueFull, _Busy) as e:
            status = 503
            return _error(str(e), status, {"retry-after": "1"})
        except DeadlineExceeded as e:
            status = 504
            return _error(str(e), status)
        except ClientDisconnect:
            status = None
            metrics.client_disconnect(model_name)
            logger.info("Client disconnected before sending its whole request (%s).",
                        model_name)
            return Response(status_code=499)  # nginx's code; nobody receives it
        except Exception:  # noqa: BLE001 - a server fault, not the caller's input
            request_id = uuid.uuid4().hex[:16]
            logger.exception("Internal error in request %s (%s %s)", request_id,
                             request.method, request.url.path)
            return JSONResponse({"error": f"Internal server error; request id {request_id} "
                                          f"in the server log has the details.",
                                 "request_id": request_id}, status_code=500,
                                headers={"x-request-id": request_id})
        finally:
            metrics.in_flight -= 1
            if status is not None:
                metrics.request(model_name, status, time.perf_counter() - start)

    async def infer(request):
        name = request.path_params["name"]

        async def handle(deadline):
            model_name, sig = model_or_404(request)
            request_id, arrays, (requested, binary_outputs) = await read_and_parse(request, sig)
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
            loop = asyncio.get_running_loop()
            inputs = await loop.run_in_executor(
                cpu_executor, lambda: generator.check_inputs(
                    arrays, sig, max_batch=config.max_request_batch))
            outputs = await batchers[sig].submit(inputs, timeout=deadline - time.monotonic())
            body, headers = await loop.run_in_executor(
                cpu_executor, encode_infer_response, model_name, request_id, outputs,
                requested, binary_outputs)
            return Response(body, headers=headers)

        return await timed(request, name, handle)

    def png_query(request, model_name, n_limit):
        q = request.query_params
        try:
            n = int(q.get("n", "16"))
            seed = int(q["seed"]) if "seed" in q else None
            ncols = int(q["ncols"]) if "ncols" in q else None
            labels = ([int(v) for v in q["labels"].split(",")] if "labels" in q else None)
        except ValueError as e:
            raise ProtocolError(f"Query parameters n, seed, ncols must be ints and labels "
                                f"comma-separated ints: {str(e)[:200]}") from None
        if not 1 <= n <= n_limit:
            raise ProtocolError(f"n={n} must be in 1 ... {n_limit}.")
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise ProtocolError(f"seed={str(seed)[:50]} must be in 0 ... 2**64-1.")
        if ncols is not None and not 1 <= ncols <= n:
            raise ProtocolError(f"ncols={str(ncols)[:50]} must be in 1 ... n={n}.")
        if labels is not None and len(labels) not in (1, n):
            raise ProtocolError(f"labels must be one int or n={n} ints, got {len(labels)}.")
        h, w = generator.image_shape[:2]
        cols = ncols or math.ceil(math.sqrt(n))
        pixels = math.ceil(n / cols) * h * cols * w
        if pixels > config.max_png_pixels:
            raise ProtocolError(f"A grid of n={n} images in {cols} columns has {pixels} "
                                f"pixels, over the limit of {config.max_png_pixels}; ask "
                                f"for fewer images or columns.")
        return n, seed, ncols, labels

    async def png(request):
        name = request.path_params["name"]

        async def handle(deadline):
            model_name, sig = model_or_404(request)
            if sig not in ("generate", "decode"):
                raise ProtocolError(f"Model {model_name!r} ({sig}) does not produce images; "
                                    f"use {generator.name!r}.")
            n, seed, ncols, labels = png_query(request, model_name, config.max_request_batch)
            rng = np.random.default_rng(seed)
            from keras_aigc_runtime import postprocess

            spec = generator.signature_spec(sig)
            # Latents (GANs, VAEs) or uniform noise (PixelCNN), by the inputs' roles.
            raw = postprocess.random_inputs(generator.manifest, spec, n, rng)
            for t in spec["inputs"]:
                if t.get("role") == "label":  # default: the classes in turn, as Keras
                    if labels is not None and len(labels) == 1:
                        labels = labels * n
                    raw[t["name"]] = postprocess.normalize_labels(
                        labels, n, generator.num_classes, ProtocolError)
            if labels is not None and not any(t.get("role") == "label" for t in spec["inputs"]):
                raise ProtocolError(f"labels are only for conditional models; model "
                                    f"{model_name!r} has no input with role 'label'.")
            inputs = generator.check_inputs(raw, sig, max_batch=config.max_request_batch)
            out = await batchers[sig].submit(inputs, timeout=deadline - time.monotonic())
            image_name = next((t["name"] for t in spec["outputs"] if t.get("role") == "image"),
                              spec["outputs"][0]["name"])
            used = next((raw[t["name"]] for t in spec["inputs"] if t.get("role") == "label"),
                        None)
            claims = generator.provenance_claims(seed, None if used is None else used.tolist())

            def encode():
                grid = image_grid(generator.to_uint8(out[image_name]), ncols)
                if watermark is not None:
                    grid, _ = wm.mark(grid, watermark)
                return stamp_png(encode_png(grid), claims, sign=credentials)

            body = await asyncio.get_running_loop().run_in_executor(cpu_executor, encode)
            return Response(body, media_type="image/png")

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
    middleware = []
    if auth_tokens is not None:
        from starlette.middleware import Middleware

        from keras_aigc_runtime.server.auth import BearerAuth

        middleware.append(Middleware(BearerAuth, tokens=list(auth_tokens)))
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                    exception_handlers={HTTPException: http_error})
    app.state.metrics = metrics
    app.state.models = models
    app.state.config = config
    return app


class _Busy(RuntimeError):
    """Too many bodies are being received (HTTP 503)."""
