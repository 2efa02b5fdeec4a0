"""A minimal in-process ASGI client (lifespan + HTTP) for fast server tests.

Starlette's TestClient needs httpx; this drives the app directly on one event loop,
so hundreds of fuzz examples run in seconds without sockets.
"""

import asyncio


class AsgiClient:
    """Runs `app`'s lifespan on `loop` and sends it requests.

    Example:

    ```python
    with AsgiClient(app) as c:
        status, headers, body = c.request("GET", "/v2/health/ready")
    ```
    """

    def __init__(self, app):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan = None
        self._to_app = None
        self._from_app = None

    def __enter__(self):
        self.loop.run_until_complete(self._startup())
        return self

    def __exit__(self, *exc):
        self.loop.run_until_complete(self._shutdown())
        self.loop.close()

    async def _startup(self):
        self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._state = scope["state"]
        self._lifespan = asyncio.ensure_future(
            self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        msg = await self._from_app.get()
        assert msg["type"] == "lifespan.startup.complete", msg

    async def _shutdown(self):
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._lifespan

    async def arequest(self, method, path, body=b"", headers=None, query=b"",
                       chunks=None, disconnect_after=None):
        """Returns `(status, {lower-case header: value}, body bytes)`.

        `chunks` sends the body in pieces; `disconnect_after=k` sends `k` pieces and
        then `http.disconnect` (a client that went away mid-body).
        """
        hdrs = [(k.lower().encode("latin-1"), v.encode("utf-8"))  # raw bytes on the wire
                for k, v in (headers or {}).items()]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": query, "root_path": "", "headers": hdrs,
                 "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 8000),
                 "state": dict(self._state)}
        pieces = list(chunks) if chunks is not None else [body]
        sent = {"i": 0}

        async def receive():
            i = sent["i"]
            sent["i"] += 1
            if disconnect_after is not None and i >= disconnect_after:
                return {"type": "http.disconnect"}
            if i < len(pieces):
                return {"type": "http.request", "body": pieces[i],
                        "more_body": i < len(pieces) - 1}
            await asyncio.sleep(3600)  # the app waits for a disconnect that never comes

        out = {"status": None, "headers": {}, "body": []}

        async def send(msg):
            if msg["type"] == "http.response.start":
                out["status"] = msg["status"]
                out["headers"] = {k.decode().lower(): v.decode() for k, v in msg["headers"]}
            elif msg["type"] == "http.response.body":
                out["body"].append(msg.get("body", b""))

        await self.app(scope, receive, send)
        return out["status"], out["headers"], b"".join(out["body"])

    def request(self, *args, **kwargs):
        return self.loop.run_until_complete(self.arequest(*args, **kwargs))
