"""uvicorn's h11 protocol with a connection cap and a header-read timeout.

uvicorn already closes idle keep-alive connections (`timeout_keep_alive`) and answers
503 past `limit_concurrency`, but a client that sends nothing on a fresh connection,
or sends headers a byte at a time (slowloris), keeps its connection for ever (any
byte cancels the keep-alive timer). This subclass adds:

- a header timeout: a connection whose request headers are not complete within
  `header_timeout` seconds of its opening (or of its previous response) is closed,
  and so is one left with an unread body after its response;
- a hard connection cap: past `max_connections` open connections a new one gets a
  503 with `Retry-After` and is closed at once (it never holds a buffer).

The body-read timeout is the app's (`ServerConfig.body_timeout_s`, HTTP 408).
"""

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
         b"retry-after: 1\r\nconnection: close\r\ncontent-length: 53\r\n\r\n"
         b'{"error": "Too many connections; retry in a second."}')
assert len(b'{"error": "Too many connections; retry in a second."}') == 53


def guarded_protocol(header_timeout, max_connections, on_refused=None, on_timeout=None):
    """Returns an `H11Protocol` subclass for `uvicorn.Config(http=...)`.

    Args:
        header_timeout: float. Seconds allowed for a request's headers.
        max_connections: int. Open connections beyond it are refused with 503.
        on_refused: callable `()` or `None`, called per refused connection (metrics).
        on_timeout: callable `()` or `None`, called per connection closed by the timer.
    """

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._header_timer = None
            if len(self.connections) > max_connections:
                if on_refused is not None:
                    on_refused()
                transport.write(_BUSY)
                transport.close()
                return
            self._arm_header_timer()

        def _arm_header_timer(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(header_timeout, self._header_timeout)

        def _header_timeout(self):
            self._header_timer = None
            if self.transport.is_closing():
                return
            waiting_headers = self.conn.their_state is h11.IDLE
            app_done = self.cycle is None or self.cycle.response_complete
            if waiting_headers or (app_done and self.conn.their_state is h11.SEND_BODY):
                if on_timeout is not None:
                    on_timeout()
                self.transport.close()

        def on_response_complete(self):
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_header_timer()

        def connection_lost(self, exc):
            if getattr(self, "_header_timer", None) is not None:
                self._header_timer.cancel()
                self._header_timer = None
            super().connection_lost(exc)

    return GuardedH11Protocol
