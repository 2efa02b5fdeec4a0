"""Prometheus text-format metrics without a client library: counters and histograms."""

import threading

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Histogram:
    def __init__(self, buckets):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value):
        i = next((k for k, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        self.counts[i] += 1
        self.sum += value
        self.count += 1

    def lines(self, name, labels=""):
        out, cumulative = [], 0
        sep = "," if labels else ""
        for b, c in zip(list(self.buckets) + ["+Inf"], self.counts, strict=True):
            cumulative += c
            out.append(f'{name}_bucket{{{labels}{sep}le="{b}"}} {cumulative}')
        lab = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{lab} {self.sum:.6f}", f"{name}_count{lab} {self.count}"]
        return out


class Metrics:
    """Request counts by model and status, in-flight requests, the histogram of batch
    sizes the model really ran (after dynamic batching) and of request latency."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = {}
        self.in_flight = 0
        self.batch_size = {}
        self.latency = {}
        self.client_disconnects = {}
        self.connections_refused = 0
        self.connections_timed_out = 0

    def client_disconnect(self, model):
        with self._lock:
            self.client_disconnects[model] = self.client_disconnects.get(model, 0) + 1

    def connection_refused(self):
        with self._lock:
            self.connections_refused += 1

    def connection_timed_out(self):
        with self._lock:
            self.connections_timed_out += 1

    def request(self, model, status, seconds):
        with self._lock:
            key = (model, int(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            self.latency.setdefault(model, _Histogram(LATENCY_BUCKETS)).observe(seconds)

    def batch(self, model, size):
        with self._lock:
            self.batch_size.setdefault(model, _Histogram(BATCH_BUCKETS)).observe(size)

    def render(self):
        with self._lock:
            lines = ["# HELP keras_aigc_requests_total Inference requests by model and HTTP status.",
                     "# TYPE keras_aigc_requests_total counter"]
            for (model, status), n in sorted(self.requests.items()):
                lines.append(f'keras_aigc_requests_total{{model="{model}",status="{status}"}} {n}')
            lines += ["# HELP keras_aigc_client_disconnects_total Requests whose client "
                      "disconnected before the server could answer (not server errors).",
                      "# TYPE keras_aigc_client_disconnects_total counter"]
            for model, n in sorted(self.client_disconnects.items()):
                lines.append(f'keras_aigc_client_disconnects_total{{model="{model}"}} {n}')
            lines += ["# HELP keras_aigc_connections_refused_total Connections refused with "
                      "503 past the connection cap.",
                      "# TYPE keras_aigc_connections_refused_total counter",
                      f"keras_aigc_connections_refused_total {self.connections_refused}",
                      "# HELP keras_aigc_connections_timed_out_total Connections closed for "
                      "sending headers or a body too slowly.",
                      "# TYPE keras_aigc_connections_timed_out_total counter",
                      f"keras_aigc_connections_timed_out_total {self.connections_timed_out}"]
            lines += ["# HELP keras_aigc_requests_in_flight Requests being processed.",
                      "# TYPE keras_aigc_requests_in_flight gauge",
                      f"keras_aigc_requests_in_flight {self.in_flight}",
                      "# HELP keras_aigc_batch_size Rows per model run after dynamic batching.",
                      "# TYPE keras_aigc_batch_size histogram"]
            for model, h in sorted(self.batch_size.items()):
                lines += h.lines("keras_aigc_batch_size", f'model="{model}"')
            lines += ["# HELP keras_aigc_request_latency_seconds Inference request latency.",
                      "# TYPE keras_aigc_request_latency_seconds histogram"]
            for model, h in sorted(self.latency.items()):
                lines += h.lines("keras_aigc_request_latency_seconds", f'model="{model}"')
        return "\n".join(lines) + "\n"
