"""Dynamic batching: concurrent requests merged into one model run, split back after."""

import asyncio
import collections
import contextlib
import logging
import time

import numpy as np

logger = logging.getLogger("keras_aigc_runtime.server")


class ShuttingDown(RuntimeError):
    """Raised by `submit` once `close()` has begun (the server answers 503)."""


class QueueFull(RuntimeError):
    """Raised by `submit` when `max_queue` requests already wait (the server answers 503
    with `Retry-After`)."""


class DeadlineExceeded(RuntimeError):
    """Raised by `submit` when a request's result is not ready by its deadline (the
    server answers 504)."""


class BatchFailed(RuntimeError):
    """A merged run failed outside the model (merging or splitting): every request of
    the run gets it, chained to the real error."""


class _Item:
    __slots__ = ("inputs", "n", "future", "key")

    def __init__(self, inputs, n, future):
        self.inputs, self.n, self.future = inputs, n, future
        # Requests merge only with requests of the same names, dtypes and row shapes.
        self.key = tuple((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items())


class DynamicBatcher:
    """Queues requests for one signature and runs them in merged batches.

    By default (`max_delay_s=0`) batching is adaptive, like Triton's default
    dynamic batcher: an idle model runs a request at once, and the requests that
    arrive while it runs are merged into the next run. With `max_delay_s > 0` the
    first queued request also waits up to that long for others to join. A merged
    batch stays within `max_batch` rows and merges only requests whose inputs have
    the same names, dtypes and non-batch shapes. At most `instances` batches run at
    once on `executor` (Triton's `instance_group` count). `max_batch <= 1` turns
    merging off.

    Every request ends: a failure while merging, running or splitting a batch fails
    each request of that batch with the error, and a request waits at most
    `timeout` seconds (`DeadlineExceeded`). At most `max_queue` requests wait; more
    get `QueueFull`.

    Args:
        fn: callable `{name: array} -> {name: array}` (already validated inputs).
        max_batch: int. Most rows per merged run.
        max_delay_s: float. Longest wait for more requests after the first one;
            `0` is adaptive batching (no wait). Defaults to `0`.
        executor: `concurrent.futures.Executor` running `fn`.
        on_batch: callable `(rows)` called for each run (metrics).
        instances: int. Concurrent runs (the executor needs as many workers).
        max_queue: int or `None`. Most requests waiting; `None` is unbounded.
    """

    def __init__(self, fn, max_batch, max_delay_s=0.0, executor=None, on_batch=None,
                 instances=1, max_queue=None):
        self.fn = fn
        self.max_batch = int(max_batch)
        self.max_delay_s = float(max_delay_s)
        self.executor = executor
        self.on_batch = on_batch
        self.max_queue = max_queue
        self._items = collections.deque()
        self._event = asyncio.Event()
        self._closing = False
        self._task = None
        self._slots = asyncio.Semaphore(int(instances))
        self._running = set()

    def start(self):
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self):
        """Runs what is queued, then stops."""
        self._closing = True
        self._event.set()
        if self._task is not None:
            await self._task

    @property
    def queued(self):
        return len(self._items)

    async def submit(self, inputs, timeout=None):
        """Queues `inputs` and returns the outputs of their rows.

        Raises:
            ShuttingDown, QueueFull, DeadlineExceeded, or the error of the run.
        """
        if self._closing:
            raise ShuttingDown("The server is shutting down; retry on another replica.")
        if self.max_queue is not None and len(self._items) >= self.max_queue:
            raise QueueFull(f"The server is busy: {len(self._items)} requests are queued "
                            f"(the limit is {self.max_queue}); retry later.")
        n = len(next(iter(inputs.values())))
        fut = asyncio.get_running_loop().create_future()
        item = _Item(inputs, n, fut)
        self._items.append(item)
        self._event.set()
        if timeout is None:
            return await fut
        try:
            # shield: a timeout must not cancel the future under a running batch; the
            # batch skips requests whose future is already done.
            return await asyncio.wait_for(asyncio.shield(fut), max(timeout, 0.0))
        except asyncio.TimeoutError:
            if not fut.done():
                fut.cancel()
            with contextlib.suppress(ValueError):
                self._items.remove(item)  # still queued: free its place
            raise DeadlineExceeded(f"The request did not finish within its deadline of "
                                   f"{timeout:.3g} s; the server is overloaded, retry later."
                                   ) from None

    def _collect_more(self, batch, total):
        """Moves queued requests that fit and match `batch[0]` into `batch`, in order;
        others keep their place. Returns the new row total."""
        if self.max_batch <= 1:
            return total
        key, kept = batch[0].key, collections.deque()
        while self._items and total < self.max_batch:
            item = self._items.popleft()
            if item.future.done():
                continue  # timed out while queued
            if item.key != key:
                kept.append(item)
            elif total + item.n <= self.max_batch:
                batch.append(item)
                total += item.n
            else:
                kept.append(item)
                break  # the next matching request does not fit: it opens the next batch
        kept.extend(self._items)
        self._items = kept
        return total

    async def _gather(self, first):
        batch = [first]
        total = self._collect_more(batch, first.n)
        if self.max_batch <= 1 or self.max_delay_s <= 0:
            return batch
        deadline = time.monotonic() + self.max_delay_s
        while total < self.max_batch and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except asyncio.TimeoutError:
                break
            total = self._collect_more(batch, total)
        return batch

    async def _loop(self):
        try:
            while True:
                while self._items and self._items[0].future.done():
                    self._items.popleft()  # timed out while queued
                if not self._items:
                    if self._closing:
                        break
                    self._event.clear()
                    await self._event.wait()
                    continue
                await self._slots.acquire()
                if not self._items:
                    self._slots.release()
                    continue
                try:
                    batch = await self._gather(self._items.popleft())
                except BaseException:
                    self._slots.release()
                    raise
                task = asyncio.get_running_loop().create_task(self._run(batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        except BaseException as e:  # noqa: BLE001 - no request may be left waiting
            logger.exception("The batcher loop failed; failing the queued requests.")
            err = e if isinstance(e, Exception) else ShuttingDown("The batcher stopped.")
            while self._items:
                item = self._items.popleft()
                if not item.future.done():
                    item.future.set_exception(err)
            raise
        finally:
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)

    def _merge(self, live):
        names = list(live[0].inputs)
        if len(live) == 1:
            return dict(live[0].inputs)
        return {k: np.concatenate([b.inputs[k] for b in live]) for k in names}

    def _split(self, live, out, rows):
        bad = {k: len(v) for k, v in out.items() if np.ndim(v) < 1 or len(v) != rows}
        if bad:
            raise BatchFailed(f"The model returned {bad} rows for a batch of {rows}.")
        parts, start = [], 0
        for b in live:
            parts.append({k: v[start:start + b.n] for k, v in out.items()})
            start += b.n
        return parts

    async def _run(self, batch):
        live = [b for b in batch if not b.future.done()]
        try:
            if not live:
                return
            rows = sum(b.n for b in live)
            try:
                merged = self._merge(live)
            except Exception as e:
                raise BatchFailed(f"Could not merge {len(live)} requests into one batch: "
                                  f"{type(e).__name__}") from e
            out = await asyncio.get_running_loop().run_in_executor(self.executor, self.fn,
                                                                   merged)
            parts = self._split(live, out, rows)
            if self.on_batch is not None:
                try:
                    self.on_batch(rows)
                except Exception:  # noqa: BLE001 - metrics must not fail requests
                    logger.exception("on_batch failed")
            for b, part in zip(live, parts, strict=True):
                if not b.future.done():
                    b.future.set_result(part)
        except BaseException as e:  # noqa: BLE001 - handed to every waiting request
            err = e if isinstance(e, Exception) else ShuttingDown("The batch was cancelled.")
            for b in live:
                if not b.future.done():
                    b.future.set_exception(err)
            if not isinstance(e, Exception):
                raise
        finally:
            self._slots.release()
