"""Bearer-token authentication as a pure ASGI middleware."""

import hmac
import json
import os

TOKEN_ENV = "KERAS_AIGC_SERVE_TOKENS"


def read_tokens(path=None, env=TOKEN_ENV):
    """Tokens from a file (one per line, `#` comments) and/or an environment variable
    (comma-separated). Never from the command line, where `ps` shows them.

    Returns:
        A frozenset of tokens, empty when neither source gives any.

    Raises:
        ValueError: the file cannot be read, or a token is shorter than 16 characters.
    """
    tokens = []
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"Cannot read the auth token file {path!r}: {e}") from None
        tokens += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        if not tokens:
            raise ValueError(f"The auth token file {path!r} holds no token (one per line).")
    if env and os.environ.get(env):
        tokens += [t.strip() for t in os.environ[env].split(",") if t.strip()]
    short = [t for t in tokens if len(t) < 16]
    if short:
        raise ValueError(f"{len(short)} auth token(s) are shorter than 16 characters; use "
                         f"e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`.")
    return frozenset(tokens)


class BearerAuth:
    """Answers 401 to requests without `Authorization: Bearer <one of tokens>`.

    Paths under `open_prefixes` (the health checks by default, for load balancers
    and Kubernetes probes) stay open. Tokens are compared in constant time.

    Args:
        app: the ASGI app to protect.
        tokens: iterable of str. Accepted tokens.
        open_prefixes: tuple of str. Paths served without a token.
    """

    def __init__(self, app, tokens, open_prefixes=("/v2/health/",)):
        self.app = app
        self.tokens = [t.encode() for t in tokens]
        if not self.tokens:
            raise ValueError("BearerAuth needs at least one token.")
        self.open_prefixes = tuple(open_prefixes)

    def _authorized(self, scope):
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                token = token.strip()
                # Check every token: the time taken does not tell which one was close.
                ok = False
                for t in self.tokens:
                    ok |= hmac.compare_digest(token, t)
                return ok
        return False

    async def __call__(self, scope, receive, send):
        if (scope["type"] != "http" or scope["path"].startswith(self.open_prefixes)
                or self._authorized(scope)):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "Missing or wrong bearer token: send the header "
                                    "'Authorization: Bearer <token>'."}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="keras-aigc"')]})
        await send({"type": "http.response.body", "body": body})
